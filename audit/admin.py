from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from audit.admin_mixins import SENSITIVE, AppendOnly, FitsScreen, SensitiveFieldsHidden, pretty
from audit.failed_admin import replay_events
from audit.models import Alert, Attempt, Event
from connector import replay, rollback, waiting
from connector.models import Link
from connector.rollback import RollbackConflict, RollbackError, plan
from tenants.models import JiraSite

# What the event's fields mean, per source (shown on the event's page).
SOURCE_HELP = {
    Event.Source.FRESHBOOKS: "A FreshBooks webhook delivery: “object id” is the FreshBooks record's id (the invoice, "
    "bill, payment… named by the event), “account id” and “business id” the FreshBooks business. The fetched "
    "record is what the worker read from FreshBooks; the Jira key is the issue it created or updated.",
    Event.Source.JIRA: "A Jira webhook: “object id” is the Jira issue id and the Jira key its key; the payload is "
    "what Jira sent. Issue deletions mark the connector's link as deleted in Jira.",
}
# Fields that mean something for one source only, left off the other source's events.
JIRA_ONLY = {"delivery_id"}  # Jira's X-Atlassian-Webhook-Identifier
FRESHBOOKS_ONLY = {"account_id", "business_id", "record_pretty"}
LINK_STATE_WORDS = {Link.State.ROLLED_BACK: "rolled back", Link.State.DELETED: "deleted in Jira"}


class AttemptInline(admin.TabularInline):
    """The calls to FreshBooks and Jira made while processing the event (not the processing runs)."""

    model = Attempt
    verbose_name, verbose_name_plural = "outbound call", "outbound calls (requests to FreshBooks and Jira)"
    fields = ("created_at", "actor", "action", "http_status", "duration_ms", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Event)
class EventAdmin(FitsScreen, SensitiveFieldsHidden, AppendOnly, admin.ModelAdmin):
    list_display = (
        "id",
        "tenant",
        "name",
        "object_id",
        "source",
        "status_shown",
        "detail",
        "jira_issue",
        "received_at",
    )  # the processing runs are on each event's page: the list fits a 1366-px screen without them
    list_filter = ("status", "source", "name", "tenant")
    search_fields = ("=id", "object_id", "jira_key", "account_id", "business_id", "delivery_id")
    date_hierarchy = "received_at"
    list_select_related = ("tenant", "assigned_to")
    inlines = [AttemptInline]
    actions = ["replay_selected", "rollback_selected"]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "source_help",
                    "tenant",
                    "source",
                    "name",
                    "object_id",
                    "account_id",
                    "business_id",
                    "delivery_id",
                    "status_shown",
                    "status_detail",
                    "jira_issue",
                    "processing_runs",
                    "duplicate_of",
                    "replay_requested_by",
                    "replay_requested_at",
                    "received_at",
                    "started_at",
                    "finished_at",
                )
            },
        ),
        (
            "Triage",
            {"fields": ("assigned_to", "failure_reason", "resolved_by", "resolved_at", "resolution_note")},
        ),
        (
            "Payload and fetched record (decrypted)",
            {"classes": ("collapse",), "fields": ("payload_pretty", "record_pretty")},
        ),
    )
    sensitive_fields = ("payload_pretty", "record_pretty")
    readonly_fields = [name for _title, options in fieldsets for name in options["fields"]]

    change_form_template = "admin/audit/event/change_form.html"  # adds "Replay" and "Roll back" buttons

    def get_fieldsets(self, request, obj=None):
        """A FreshBooks (or reconcile) event's page shows no Jira-only field, a Jira event's no FreshBooks-only one."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        hidden = FRESHBOOKS_ONLY if obj.source == Event.Source.JIRA else JIRA_ONLY
        return [
            (title, {**options, "fields": [name for name in options["fields"] if name not in hidden]})
            for title, options in fieldsets
        ]

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
        """GET: the confirmation page for this one event; POST with post=yes: queue its rollback, back to its
        page."""
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
        """The Replay and Roll back buttons, for who may use them, on events they apply to (a rolled-back event
        offers neither: it stays rolled back)."""
        event = context.get("original")
        rolled_back = event is not None and event.status == Event.Status.ROLLED_BACK
        context.update(
            can_replay=self.has_replay_permission(request)
            and event is not None
            and not replay.refusal(event),
            can_rollback=self.has_rollback_permission(request) and not rolled_back,
        )
        return super().render_change_form(request, context, *args, **kwargs)

    @admin.action(description="Roll back selected events (undo their Jira writes)", permissions=["rollback"])
    def rollback_selected(self, request, queryset):
        """Django's two-step pattern: a confirmation page listing what will be undone in Jira, then (on its
        POST with post=yes) the rollbacks are queued for the worker (connector.rollback.queue: the request
        only reads), one message for them and one per refused event; each event's detail shows its outcome.
        Events whose issue or worklog was changed in Jira since are not queued: a second page shows the
        differences and asks again (overwrite=yes)."""
        events = list(queryset.order_by("received_at", "id"))
        conflicts, queued = [], 0
        if request.method == "POST" and request.POST.get("post") == "yes":
            actor = f"admin:{request.user.get_username()}"
            overwrite = request.POST.get("overwrite") == "yes"
            for event in events:
                try:
                    rollback.queue(event, actor=actor, overwrite=overwrite)
                except RollbackConflict as exc:
                    conflicts.append((event, exc.differences))
                except RollbackError as exc:
                    self.message_user(request, f"Not rolled back #{event.pk}: {exc}.", messages.WARNING)
                else:
                    queued += 1
            if queued:
                self.message_user(
                    request,
                    f"Rollback of {queued} event{'s' if queued != 1 else ''} queued: each event's status "
                    "shows the outcome once the worker is done.",
                    messages.SUCCESS,
                )
            if not conflicts:
                return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Overwrite changes made in Jira?" if conflicts else "Roll back events?",
            "opts": self.model._meta,
            "events": [(event, plan(event)) for event in ([e for e, _ in conflicts] or events)],
            "conflicts": conflicts,
            "show_values": request.user.has_perm(SENSITIVE),  # the differences are Jira field values
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "single": request.resolver_match.url_name == "audit_event_rollback",
        }
        return TemplateResponse(request, "admin/audit/event/rollback_confirmation.html", context)

    @admin.action(description="Replay selected events", permissions=["replay"])
    def replay_selected(self, request, queryset):
        """Queue the events for processing again (the ledger makes it safe; earlier attempts are kept)."""
        replay_events(self, request, queryset)

    def get_queryset(self, request):
        """Each event with the state of the connector's link to its Jira issue (rolled back, deleted…)."""
        links = Link.objects.filter(
            tenant=OuterRef("tenant"), jira_issue_key=OuterRef("jira_key"), purpose=Link.Purpose.ISSUE
        ).exclude(jira_issue_key="")
        sites = JiraSite.objects.filter(tenant=OuterRef("tenant"))
        return (
            super()
            .get_queryset(request)
            .annotate(
                link_state=Subquery(links.values("state")[:1]),
                site_url=Subquery(sites.values("base_url")[:1]),
            )
        )

    @admin.display(description="Jira issue", ordering="jira_key")
    def jira_issue(self, obj):
        """The key, linking to the issue in Jira; "rolled back" or "deleted in Jira" when it is gone."""
        if not obj.jira_key:
            return "—"
        gone = LINK_STATE_WORDS.get(getattr(obj, "link_state", None))
        if gone:
            return format_html("<s>{}</s> ({})", obj.jira_key, gone)
        url = getattr(obj, "site_url", None)
        if not url:
            return obj.jira_key
        return format_html(
            '<a href="{}/browse/{}" target="_blank" rel="noopener">{}</a>',
            url.rstrip("/"),
            obj.jira_key,
            obj.jira_key,
        )

    @admin.display(description="Status", ordering="status")
    def status_shown(self, obj):
        """The status in words; a succeeded event whose issue is gone since says so; a waiting one says what for
        and until when ("Waiting for Jira's quota until 14:00 UTC", connector.waiting); who it is assigned to."""
        gone = LINK_STATE_WORDS.get(getattr(obj, "link_state", None))
        if obj.status == Event.Status.WAITING:
            text = waiting.describe(obj)
            text = text[:1].upper() + text[1:]
        elif gone and obj.status == Event.Status.SUCCEEDED:
            text = f"{obj.get_status_display()}, but its issue was {gone} since"
        elif obj.status == Event.Status.RESOLVED and obj.resolved_by:
            text = f"{obj.get_status_display()} by {obj.resolved_by.removeprefix('admin:')}"
        else:
            text = obj.get_status_display()
        if obj.assigned_to_id:
            text += f" · assigned to {obj.assigned_to.get_username()}"
        return text

    @admin.display(description="Processing runs", ordering="attempts")
    def processing_runs(self, obj):
        """How many times the worker started processing this event (its outbound calls are listed below)."""
        return obj.attempts

    @admin.display(description="About this event")
    def source_help(self, obj):
        return SOURCE_HELP.get(obj.source, "")

    @admin.display(description="Detail", ordering="status_detail")
    def detail(self, obj):
        """Why an event failed or was skipped, at a glance (the full text is on the event's page)."""
        text = obj.status_detail
        return text if len(text) <= 80 else text[:79] + "…"

    @admin.display(description="Payload")
    def payload_pretty(self, obj):
        return pretty(obj.payload)

    @admin.display(description="Fetched record")
    def record_pretty(self, obj):
        return pretty(obj.record)


@admin.register(Attempt)
class AttemptAdmin(FitsScreen, SensitiveFieldsHidden, AppendOnly, admin.ModelAdmin):
    list_display = ("id", "event", "actor", "action", "http_status", "duration_ms", "created_at")
    list_filter = ("http_status", "actor")
    search_fields = ("action", "error", "=event__id")
    raw_id_fields = ("event",)
    list_select_related = ("event",)
    exclude = ("request", "response", "previous")
    sensitive_fields = ("request_pretty", "response_pretty", "previous_pretty")
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
        "previous_pretty",
    )

    @admin.display(description="Request (decrypted)")
    def request_pretty(self, obj):
        return pretty(obj.request)

    @admin.display(description="Response (decrypted)")
    def response_pretty(self, obj):
        return pretty(obj.response)

    @admin.display(description="Overwritten values, kept for rollback (decrypted)")
    def previous_pretty(self, obj):
        return pretty(obj.previous)


@admin.register(Alert)
class AlertAdmin(AppendOnly, admin.ModelAdmin):
    """Alerts raised (audit.alerts): one row per tenant, kind, subject and hour, with its occurrences."""

    list_display = ("hour", "tenant", "kind", "subject", "occurrences", "mailed", "last_at")
    list_filter = ("kind", "mailed", "tenant")
    list_select_related = ("tenant",)
    date_hierarchy = "hour"
