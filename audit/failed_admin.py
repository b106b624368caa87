"""The Failed events admin: failed events only, grouped by their stored reason (counted in the database),
replayed by selection (a large selection as one background task with its progress), resolved without retry
with a note, and assigned to a staff member. Also the replay batches' own read-only list."""

from datetime import timedelta

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from audit import triage
from audit.admin_mixins import AppendOnly, FitsScreen
from audit.models import Event, FailedEvent, ReplayBatch
from connector.replay import replay, start_batch

INLINE_LIMIT = 100  # a selection larger than this is replayed by one background task (connector.replay)
MAX_GROUPS = 50  # reasons listed in the filter, largest first


def actor_of(request):
    return f"admin:{request.user.get_username()}"


def replay_events(modeladmin, request, queryset):
    """Replay the selected events and record who asked (on the events, their attempts and the admin log)."""
    actor = actor_of(request)
    result = replay(queryset.order_by("received_at", "id"), actor=actor)
    for event in result.queued:
        modeladmin.log_change(request, event, f"Replay requested by {actor}")
    if result.queued:
        ids = ", ".join(f"#{event.pk}" for event in result.queued)
        modeladmin.message_user(
            request, f"Queued {len(result.queued)} event(s) for replay: {ids}.", messages.SUCCESS
        )
    for event, reason in result.refused:
        modeladmin.message_user(request, f"Not replayed #{event.pk}: {reason}.", messages.WARNING)


class ReasonFilter(admin.SimpleListFilter):
    """Failures grouped by reason (the stored, indexed `failure_reason`), largest group first, with counts:
    one GROUP BY in the database whatever the number of failures."""

    title = "reason"
    parameter_name = "reason"

    def lookups(self, request, model_admin):
        rows = (
            model_admin.get_queryset(request)
            .order_by()
            .values("failure_reason")
            .annotate(n=Count("id"))
            .order_by("-n", "failure_reason")[:MAX_GROUPS]
        )
        return [
            (row["failure_reason"], f"{row['failure_reason'] or '(no detail)'} ({row['n']:,})")
            for row in rows
        ]

    def queryset(self, request, queryset):
        wanted = self.value()
        return queryset if wanted is None else queryset.filter(failure_reason=wanted)


class TriageActions:
    """The resolve and assign actions: Django's two-step pattern, a page asking for the note or the person,
    then (its POST with post=yes) one UPDATE for the whole selection, even "all N matching"."""

    def has_triage_permission(self, request):
        return request.user.has_perm("audit.triage_event")

    def triage_page(self, request, queryset, action, title, **extra):
        select_across = request.POST.get("select_across") == "1"
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "action": action,
            "count": queryset.count(),
            "select_across": select_across,
            "selected": [] if select_across else list(queryset.values_list("pk", flat=True)),
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            **extra,
        }
        return TemplateResponse(request, "admin/audit/failedevent/triage.html", context)

    @admin.action(description="Resolve without retry (with a note)", permissions=["triage"])
    def resolve_selected(self, request, queryset):
        if request.POST.get("post") == "yes":
            try:
                done = triage.resolve(queryset, actor=actor_of(request), note=request.POST.get("note", ""))
            except triage.TriageError as exc:
                return self.triage_page(
                    request, queryset, "resolve_selected", "Resolve without retry", error=exc
                )
            self.message_user(request, f"Resolved {done:,} event(s) without retry.", messages.SUCCESS)
            return None
        return self.triage_page(request, queryset, "resolve_selected", "Resolve without retry")

    @admin.action(description="Assign to a staff member", permissions=["triage"])
    def assign_selected(self, request, queryset):
        staff = get_user_model().objects.filter(is_staff=True, is_active=True).order_by("username")
        if request.POST.get("post") == "yes":
            wanted = request.POST.get("assignee", "")
            user = staff.filter(pk=wanted).first() if wanted.isdigit() else None
            if wanted and user is None:
                error = "Choose an active staff member (or nobody)."
                return self.triage_page(
                    request, queryset, "assign_selected", "Assign", staff=staff, error=error
                )
            done = triage.assign(queryset, user)
            who = user.get_username() if user else "nobody"
            self.message_user(request, f"Assigned {done:,} event(s) to {who}.", messages.SUCCESS)
            return None
        return self.triage_page(request, queryset, "assign_selected", "Assign", staff=staff)


@admin.register(FailedEvent)
class FailedEventAdmin(FitsScreen, TriageActions, AppendOnly, admin.ModelAdmin):
    """Failed events only, grouped by reason (the filter on the right), replayed, resolved or assigned."""

    list_display = (
        "id",
        "tenant",
        "name",
        "object_id",
        "reason",
        "attempts",
        "assigned",
        "received_at",
        "open",
    )
    list_filter = (
        ReasonFilter,
        ("assigned_to", admin.RelatedOnlyFieldListFilter),
        "tenant",
        "name",
        "source",
    )
    search_fields = ("=id", "object_id", "status_detail")
    date_hierarchy = "received_at"
    list_select_related = ("tenant", "assigned_to")
    actions = ["replay_selected", "resolve_selected", "assign_selected"]
    fields = (
        "tenant",
        "source",
        "name",
        "object_id",
        "status_detail",
        "failure_reason",
        "assigned_to",
        "attempts",
        "received_at",
        "finished_at",
    )
    readonly_fields = fields
    change_list_template = "admin/audit/failedevent/change_list.html"
    show_full_result_count = False  # one COUNT less over every failure

    @admin.action(description="Replay selected events", permissions=["replay"])
    def replay_selected(self, request, queryset):
        """Up to INLINE_LIMIT events are queued here; a larger selection becomes one background task."""
        count = queryset.count()
        if count <= INLINE_LIMIT:
            replay_events(self, request, queryset)
            return
        reason = request.GET.get(ReasonFilter.parameter_name)
        described = f"reason “{reason or '(no detail)'}”" if reason is not None else "a selection"
        batch = start_batch(
            queryset, actor=actor_of(request), description=f"{count:,} failed events, {described}"
        )
        url = reverse("admin:audit_replaybatch_change", args=[batch.pk])
        self.message_user(
            request,
            format_html(
                'Replaying {} event(s) in the background: <a href="{}">replay #{}</a> shows its progress.',
                f"{count:,}",
                url,
                batch.pk,
            ),
            messages.SUCCESS,
        )

    def has_replay_permission(self, request):
        return request.user.has_perm("audit.replay_event")

    def changelist_view(self, request, extra_context=None):
        recent = Q(finished_at__isnull=True) | Q(finished_at__gte=timezone.now() - timedelta(hours=1))
        batches = ReplayBatch.objects.filter(recent)[:5]
        return super().changelist_view(request, {**(extra_context or {}), "batches": batches})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """Only failed events open here; one that is no longer failed (replayed, resolved) opens on the Events
        page for whoever may see it there, and is "not found" for the others."""
        if self.get_object(request, object_id) is None and request.user.has_perm("audit.view_event"):
            try:
                event = Event.objects.filter(pk=object_id).first()
            except (ValueError, ValidationError):
                event = None
            if event is not None:
                return HttpResponseRedirect(reverse("admin:audit_event_change", args=[event.pk]))
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="Reason", ordering="failure_reason")
    def reason(self, obj):
        return obj.reason

    @admin.display(description="Assigned to", ordering="assigned_to__username")
    def assigned(self, obj):
        return obj.assigned_to.get_username() if obj.assigned_to else "—"

    @admin.display(description="Event")
    def open(self, obj):
        return format_html('<a href="{}">#{}</a>', reverse("admin:audit_event_change", args=[obj.pk]), obj.pk)


@admin.register(ReplayBatch)
class ReplayBatchAdmin(AppendOnly, admin.ModelAdmin):
    """Replays of a large selection, run by one background task each: what, who, and how far."""

    list_display = (
        "id",
        "description",
        "requested_by",
        "state",
        "progress",
        "queued",
        "refused",
        "created_at",
    )
    list_filter = ("state",)
    fields = (
        "description",
        "requested_by",
        "state",
        "progress",
        "queued",
        "refused",
        "detail",
        "created_at",
        "started_at",
        "finished_at",
    )
    readonly_fields = fields

    @admin.display(description="Progress")
    def progress(self, obj):
        return obj.progress
