import json

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from audit.models import Alert, Attempt, Event
from connector.ledger import describe
from connector.replay import replay
from connector.rollback import RollbackError, created_links, rollback


def pretty(value):
    if value in (None, ""):
        return "—"
    text = (
        value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    )
    return format_html("<pre style='white-space: pre-wrap; max-width: 70em'>{}</pre>", text)


class AttemptInline(admin.TabularInline):
    model = Attempt
    fields = ("created_at", "actor", "action", "http_status", "duration_ms", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


SENSITIVE = "audit.view_sensitive_data"


class SensitiveFieldsHidden:
    """Without "view sensitive audit data" a user sees the metadata only: the `sensitive_fields` (decrypted
    payloads, records, request and response bodies) are left off every page."""

    sensitive_fields: tuple[str, ...] = ()

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if request.user.has_perm(SENSITIVE):
            return fields
        return [name for name in fields if name not in self.sensitive_fields]

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if request.user.has_perm(SENSITIVE):
            return fields
        return [name for name in fields if name not in self.sensitive_fields]


class AppendOnly:
    """The audit trail is written by the connector only: operators read it, nobody edits or deletes it."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Event)
class EventAdmin(SensitiveFieldsHidden, AppendOnly, admin.ModelAdmin):
    list_display = (
        "id",
        "tenant",
        "name",
        "object_id",
        "status",
        "detail",
        "jira_key",
        "attempts",
        "received_at",
    )
    list_filter = ("status", "source", "name", "tenant")
    search_fields = ("=id", "object_id", "jira_key", "account_id", "business_id", "delivery_id")
    date_hierarchy = "received_at"
    list_select_related = ("tenant",)
    inlines = [AttemptInline]
    actions = ["replay_selected", "rollback_selected"]
    exclude = ("payload", "record", "body_hash")
    sensitive_fields = ("payload_pretty", "record_pretty")
    readonly_fields = (
        "tenant",
        "source",
        "name",
        "object_id",
        "account_id",
        "business_id",
        "delivery_id",
        "status",
        "status_detail",
        "jira_key",
        "attempts",
        "duplicate_of",
        "received_at",
        "started_at",
        "finished_at",
        "payload_pretty",
        "record_pretty",
    )

    change_form_template = "admin/audit/event/change_form.html"  # adds "Replay" and "Roll back" buttons

    def get_urls(self):
        replay_one = path(
            "<path:object_id>/replay/",
            self.admin_site.admin_view(self.replay_view),
            name="audit_event_replay",
        )
        rollback_one = path(
            "<path:object_id>/rollback/",
            self.admin_site.admin_view(self.rollback_view),
            name="audit_event_rollback",
        )
        return [replay_one, rollback_one, *super().get_urls()]

    def replay_view(self, request, object_id):
        """POST: replay this one event (the same path as the list action), then back to its page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        event = self.get_object(request, object_id)
        if event is None:
            raise Http404("No event with that id.")
        if not self.has_replay_permission(request):
            raise PermissionDenied
        self.replay_selected(request, Event.objects.filter(pk=event.pk))
        return HttpResponseRedirect(reverse("admin:audit_event_change", args=[event.pk]))

    def rollback_view(self, request, object_id):
        """GET: the confirmation page for this one event; POST with post=yes: roll it back, back to its page."""
        event = self.get_object(request, object_id)
        if event is None:
            raise Http404("No event with that id.")
        if not self.has_rollback_permission(request):
            raise PermissionDenied
        response = self.rollback_selected(request, Event.objects.filter(pk=event.pk))
        return response or HttpResponseRedirect(reverse("admin:audit_event_change", args=[event.pk]))

    def has_replay_permission(self, request):
        return request.user.has_perm("audit.replay_event")

    def has_rollback_permission(self, request):
        return request.user.has_perm("audit.rollback_event")

    def render_change_form(self, request, context, *args, **kwargs):
        context.update(
            can_replay=self.has_replay_permission(request), can_rollback=self.has_rollback_permission(request)
        )
        return super().render_change_form(request, context, *args, **kwargs)

    @admin.action(
        description="Roll back selected events (deletes their Jira issues/worklogs)", permissions=["rollback"]
    )
    def rollback_selected(self, request, queryset):
        """Django's two-step pattern: a confirmation page listing what will be deleted in Jira, then (on its
        POST with post=yes) the rollback itself, one message per event."""
        events = list(queryset.order_by("received_at", "id"))
        if request.method == "POST" and request.POST.get("post") == "yes":
            actor = f"admin:{request.user.get_username()}"
            for event in events:
                try:
                    removed = rollback(event, actor=actor)
                except RollbackError as exc:
                    self.message_user(request, f"Not rolled back #{event.pk}: {exc}.", messages.WARNING)
                else:
                    self.message_user(
                        request, f"Rolled back #{event.pk}: deleted {', '.join(removed)}.", messages.SUCCESS
                    )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Roll back events?",
            "opts": self.model._meta,
            "events": [(event, [describe(link) for link in created_links(event)]) for event in events],
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "single": request.resolver_match.url_name == "audit_event_rollback",
        }
        return TemplateResponse(request, "admin/audit/event/rollback_confirmation.html", context)

    @admin.action(description="Replay selected events", permissions=["replay"])
    def replay_selected(self, request, queryset):
        """Queue the events for processing again (the ledger makes it safe; earlier attempts are kept)."""
        result = replay(queryset.order_by("received_at", "id"), actor=f"admin:{request.user.get_username()}")
        if result.queued:
            ids = ", ".join(f"#{event.pk}" for event in result.queued)
            self.message_user(
                request, f"Queued {len(result.queued)} event(s) for replay: {ids}.", messages.SUCCESS
            )
        for event, reason in result.refused:
            self.message_user(request, f"Not replayed #{event.pk}: {reason}.", messages.WARNING)

    @admin.display(description="Detail", ordering="status_detail")
    def detail(self, obj):
        """Why an event failed or was skipped, at a glance (the full text is on the event's page)."""
        text = obj.status_detail
        return text if len(text) <= 80 else text[:79] + "…"

    @admin.display(description="Payload (decrypted)")
    def payload_pretty(self, obj):
        return pretty(obj.payload)

    @admin.display(description="Fetched record (decrypted)")
    def record_pretty(self, obj):
        return pretty(obj.record)


@admin.register(Attempt)
class AttemptAdmin(SensitiveFieldsHidden, AppendOnly, admin.ModelAdmin):
    list_display = ("id", "event", "actor", "action", "http_status", "duration_ms", "created_at")
    list_filter = ("http_status", "actor")
    search_fields = ("action", "error", "=event__id")
    raw_id_fields = ("event",)
    list_select_related = ("event",)
    exclude = ("request", "response")
    sensitive_fields = ("request_pretty", "response_pretty")
    readonly_fields = (
        "event",
        "action",
        "http_status",
        "error",
        "duration_ms",
        "actor",
        "created_at",
        "request_pretty",
        "response_pretty",
    )

    @admin.display(description="Request (decrypted)")
    def request_pretty(self, obj):
        return pretty(obj.request)

    @admin.display(description="Response (decrypted)")
    def response_pretty(self, obj):
        return pretty(obj.response)


@admin.register(Alert)
class AlertAdmin(AppendOnly, admin.ModelAdmin):
    """Alerts raised (audit.alerts): one row per tenant, kind, subject and hour, with its occurrences."""

    list_display = ("hour", "tenant", "kind", "subject", "occurrences", "mailed", "last_at")
    list_filter = ("kind", "mailed", "tenant")
    list_select_related = ("tenant",)
    date_hierarchy = "hour"
