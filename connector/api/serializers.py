"""What the operator API shows. Secrets (tokens, verifiers, webhook secrets) are never serialized; decrypted
payloads, fetched records and request/response bodies only when the serializer's context says `sensitive`
(the caller holds audit.view_sensitive_data), else they are null and never read from the database."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audit.models import Attempt, Event
from connector.models import ReconcileState
from tenants.models import ConnectionStatus, Tenant


class BacklogSerializer(serializers.Serializer):
    queued = serializers.IntegerField(help_text="Events waiting in the queue.")
    waiting = serializers.IntegerField(help_text="Events waiting: held by a pause, or for Jira's quota.")
    oldest_queued_seconds = serializers.FloatField(
        allow_null=True, help_text="Age of the oldest queued event (seconds); null when none waits."
    )


class ConnectionsSerializer(serializers.Serializer):
    freshbooks = serializers.ChoiceField(choices=ConnectionStatus.choices)
    jira = serializers.ChoiceField(choices=ConnectionStatus.choices)
    needs_reconnect = serializers.ListField(child=serializers.CharField(), help_text='e.g. ["FreshBooks"]')


class WebhooksSerializer(serializers.Serializer):
    jira = serializers.CharField(
        help_text='"ok", "not set up", "lapsed <time>" or "failing (see the Jira site)".'
    )
    freshbooks_callbacks = serializers.IntegerField(help_text="FreshBooks callbacks registered.")
    freshbooks_unverified = serializers.IntegerField(help_text="FreshBooks callbacks not verified yet.")


class ReconcileSerializer(serializers.Serializer):
    result = serializers.ChoiceField(
        choices=ReconcileState.Result.choices, source="last_result", help_text='"" when it never ran.'
    )
    started_at = serializers.DateTimeField(source="last_started_at", allow_null=True)
    finished_at = serializers.DateTimeField(source="last_finished_at", allow_null=True)
    detail = serializers.CharField(source="last_detail")
    actor = serializers.CharField(source="last_actor", help_text='Who asked: "schedule", "api:<user>"…')
    watermark = serializers.DateTimeField(allow_null=True)
    enabled = serializers.BooleanField(help_text="Reconciled on the schedule.")
    interval_minutes = serializers.IntegerField()


class HealthSerializer(serializers.Serializer):
    """audit.overview.TenantHealth, as the admin index's health panel computes it."""

    attention = serializers.BooleanField(help_text="Something needs an operator (the panel's red rows).")
    failed_24h = serializers.IntegerField(help_text="Events failed in the last 24 hours.")
    alerts_24h = serializers.IntegerField(help_text="Alerts raised in the last 24 hours.")
    connections = ConnectionsSerializer(source="*")
    webhooks = serializers.SerializerMethodField()
    backlog = BacklogSerializer(source="*")
    last_reconcile = serializers.CharField(help_text='As the panel says it: "never", "clean at …"…')
    reconcile = ReconcileSerializer(allow_null=True)

    @extend_schema_field(WebhooksSerializer)
    def get_webhooks(self, health):
        return {
            "jira": health.jira_webhooks_shown,
            "freshbooks_callbacks": health.callbacks,
            "freshbooks_unverified": health.callbacks_unverified,
        }


class TenantSerializer(serializers.ModelSerializer):
    health = HealthSerializer(read_only=True, help_text="Connections, webhooks, backlog, last reconcile.")

    class Meta:
        model = Tenant
        fields = (
            "slug",
            "name",
            "active",
            "auto_retry",
            "paused_at",
            "paused_by",
            "pause_note",
            "created_at",
            "updated_at",
            "health",
        )


class AttemptSerializer(serializers.ModelSerializer):
    """One outbound call; request, response and the overwritten values only with the permission."""

    request = serializers.SerializerMethodField()
    response = serializers.SerializerMethodField()
    previous = serializers.SerializerMethodField()

    class Meta:
        model = Attempt
        fields = (
            "id",
            "created_at",
            "actor",
            "action",
            "http_status",
            "duration_ms",
            "error",
            "request",
            "response",
            "previous",
        )

    def _sensitive(self, attempt, name):
        return getattr(attempt, name) if self.context.get("sensitive") else None

    @extend_schema_field(OpenApiTypes.ANY)
    def get_request(self, attempt):
        return self._sensitive(attempt, "request")

    @extend_schema_field({"type": "string", "nullable": True})
    def get_response(self, attempt):
        return self._sensitive(attempt, "response")

    @extend_schema_field(OpenApiTypes.ANY)
    def get_previous(self, attempt):
        return self._sensitive(attempt, "previous")


class EventSerializer(serializers.ModelSerializer):
    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    kind = serializers.SerializerMethodField()
    processing_runs = serializers.IntegerField(source="attempts", help_text="Times processing was started.")
    assigned_to = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="The staff member looking into it."
    )

    class Meta:
        model = Event
        fields = (
            "id",
            "tenant",
            "source",
            "name",
            "kind",
            "object_id",
            "account_id",
            "business_id",
            "delivery_id",
            "status",
            "status_detail",
            "failure_reason",
            "wait_reason",
            "wait_until",
            "jira_key",
            "processing_runs",
            "duplicate_of",
            "replay_requested_by",
            "replay_requested_at",
            "assigned_to",
            "resolved_by",
            "resolved_at",
            "resolution_note",
            "received_at",
            "started_at",
            "finished_at",
            "pruned_at",
        )

    @extend_schema_field(OpenApiTypes.STR)
    def get_kind(self, event):
        """The FreshBooks resource kind ("invoice" of "invoice.create"); the name itself for Jira events."""
        return event.name.split(".", 1)[0]


class EventDetailSerializer(EventSerializer):
    sensitive_data_shown = serializers.SerializerMethodField()
    payload = serializers.SerializerMethodField()
    record = serializers.SerializerMethodField()
    attempts = serializers.SerializerMethodField()

    class Meta(EventSerializer.Meta):
        fields = (*EventSerializer.Meta.fields, "sensitive_data_shown", "payload", "record", "attempts")

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_sensitive_data_shown(self, event):
        """Whether payload, record and the calls' bodies are shown (audit.view_sensitive_data)."""
        return bool(self.context.get("sensitive"))

    @extend_schema_field(OpenApiTypes.ANY)
    def get_payload(self, event):
        return event.payload if self.context.get("sensitive") else None

    @extend_schema_field(OpenApiTypes.ANY)
    def get_record(self, event):
        return event.record if self.context.get("sensitive") else None

    @extend_schema_field(AttemptSerializer(many=True, allow_null=True))
    def get_attempts(self, event):
        """The outbound calls made for the event (its attempts), oldest first; null without audit.view_attempt."""
        if not self.context.get("attempts"):
            return None
        return AttemptSerializer(event.attempt_set.all(), many=True, context=self.context).data


class ReplaySerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(default=False, help_text="Only say what would be queued and refused.")


class BulkReplaySerializer(ReplaySerializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        min_length=1,
        max_length=500,
        help_text="Event ids (1-500).",
    )


class RefusedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reason = serializers.CharField()


class ReplayResultSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    queued = serializers.ListField(child=serializers.IntegerField(), help_text="Queued (or, dry, would be).")
    refused = RefusedSerializer(many=True)
    not_found = serializers.ListField(child=serializers.IntegerField(), help_text="Ids of no visible event.")


class RollbackSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(
        default=True, help_text="true (the default): only show the plan; false: undo it in Jira."
    )
    overwrite = serializers.BooleanField(
        default=False, help_text="Undo even what was changed in Jira since (after a 409 with differences)."
    )


class RollbackResultSerializer(serializers.Serializer):
    event = serializers.IntegerField()
    dry_run = serializers.BooleanField()
    plan = serializers.ListField(
        child=serializers.CharField(), help_text="What a rollback does, one line per write."
    )
    refused = serializers.CharField(help_text='Why it cannot be rolled back now; "" when it can.')
    done = serializers.ListField(
        child=serializers.CharField(),
        help_text="Empty: a dry run undoes nothing (what a rollback undid is in the event's status_detail).",
    )
    status = serializers.ChoiceField(choices=Event.Status.choices, help_text="The event's status now.")


class RollbackQueuedSerializer(serializers.Serializer):
    event = serializers.IntegerField()
    plan = serializers.ListField(
        child=serializers.CharField(), help_text="What the rollback does, one line per write."
    )
    overwrite = serializers.BooleanField(help_text="Whether changes made in Jira since are overwritten.")
    status = serializers.ChoiceField(
        choices=Event.Status.choices,
        help_text="The event's status now (rolled_back once the worker is done).",
    )
    status_detail = serializers.CharField(
        help_text="Says the rollback is queued; the worker replaces it with what was undone, or why not."
    )
    url = serializers.URLField(help_text="The event: poll it for the outcome (also the Location header).")


class DifferenceSerializer(serializers.Serializer):
    object = serializers.CharField(help_text='e.g. "FIN-1" or "worklog 10001 on FIN-7"')
    field = serializers.CharField()
    ours = serializers.JSONField(
        allow_null=True, help_text="What the connector wrote (null without the permission)."
    )
    now = serializers.JSONField(
        allow_null=True, help_text="What Jira holds now (null without the permission)."
    )


class RollbackProblemSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.ChoiceField(choices=["refused", "conflict", "vendor_failed"])
    differences = DifferenceSerializer(many=True, required=False)


class ReconcileQueuedSerializer(serializers.Serializer):
    tenant = serializers.CharField()
    task_id = serializers.CharField(
        help_text="The django-q2 task; the result shows on the tenant's reconcile."
    )


class PauseSerializer(serializers.Serializer):
    note = serializers.CharField(
        max_length=1000, required=False, allow_blank=True, default="", help_text="Why (kept on the tenant)."
    )


class PauseResultSerializer(serializers.Serializer):
    tenant = serializers.CharField()
    paused = serializers.BooleanField(help_text="Whether the tenant is paused now.")
    changed = serializers.BooleanField(
        help_text="false: it was paused (or running) already; nothing changed."
    )
    paused_at = serializers.DateTimeField(allow_null=True)
    paused_by = serializers.CharField()
    pause_note = serializers.CharField()
    queued = serializers.IntegerField(
        allow_null=True, help_text="Resume: held events queued again, in order."
    )


class TokenInfoSerializer(serializers.Serializer):
    name = serializers.CharField()
    prefix = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    groups = serializers.ListField(child=serializers.CharField(), help_text='e.g. ["operator"]')
    may = serializers.DictField(
        child=serializers.BooleanField(), help_text="What the caller may do, by action."
    )
    token = TokenInfoSerializer(allow_null=True, help_text="The token used; null with a session.")


def differences(conflict, sensitive):
    """RollbackConflict.differences as dicts; Jira field values only for callers holding the permission."""
    return [
        {
            "object": what,
            "field": name,
            "ours": ours if sensitive else None,
            "now": now if sensitive else None,
        }
        for what, name, ours, now in conflict.differences
    ]
