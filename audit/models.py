from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from fernet_fields import EncryptedTextField

from audit.fields import EncryptedJSONField
from audit.reasons import MAX_REASON, failure_reason
from connector.retry import task_timeout
from tenants.models import Tenant


class Event(models.Model):
    """One delivery received (FreshBooks or Jira). Payload and fetched record are encrypted;
    the fields operators filter on stay in clear."""

    class Source(models.TextChoices):
        FRESHBOOKS = "freshbooks", "FreshBooks"
        JIRA = "jira", "Jira"
        RECONCILE = "reconcile", "Reconcile"  # found by `manage.py reconcile`, not delivered

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        QUEUED = "queued", "Queued"
        PROCESSING = "processing", "Processing"
        WAITING = "waiting", "Waiting"  # held until wait_until, or until released (connector.waiting)
        SUCCEEDED = "succeeded", "Succeeded"
        SKIPPED = "skipped", "Skipped"
        DUPLICATE = "duplicate", "Duplicate"
        FAILED = "failed", "Failed"
        RESOLVED = "resolved", "Resolved without retry"  # a failure an operator closed (audit.triage)
        ROLLED_BACK = "rolled_back", "Rolled back"

    # Indexes (Meta.indexes): every index is written on each insert and status change of this, the busiest
    # table, so each column has at most one, partial where most rows are empty.
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, null=True, blank=True, related_name="events", db_index=False
    )
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.FRESHBOOKS)
    name = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64, blank=True, default="")
    account_id = models.CharField(max_length=64, blank=True, default="")
    business_id = models.CharField(max_length=64, blank=True, default="")
    delivery_id = models.CharField(
        max_length=128,
        blank=True,
        default="",
        help_text="Vendor delivery id (X-Atlassian-Webhook-Identifier).",
    )
    body_hash = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="SHA-256 of the signed FreshBooks delivery: the same delivery posted again soon is a replay.",
    )
    payload = EncryptedJSONField(null=True, blank=True)
    record = EncryptedJSONField(null=True, blank=True, help_text="The full record fetched from FreshBooks.")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RECEIVED)
    status_detail = models.TextField(blank=True, default="")
    jira_key = models.CharField(max_length=32, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0, help_text="Times processing was started.")
    wait_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A waiting event resumes by itself at this time (empty: only when released, e.g. a paused tenant).",
    )
    wait_reason = models.CharField(
        max_length=100,
        blank=True,
        default="",
        help_text='Why the event waits, e.g. "Jira\'s quota" or "tenant paused".',
    )
    duplicate_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="duplicates", db_index=False
    )
    replay_requested_by = models.CharField(
        max_length=150,
        blank=True,
        default="",
        help_text="Who asked for the last replay (command or admin user).",
    )
    replay_requested_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.CharField(
        max_length=MAX_REASON,
        blank=True,
        default="",
        editable=False,
        help_text="A failed event's detail without ids, keys and counters (audit.reasons): failures group by it.",
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_events",
        db_index=False,
        help_text="The staff member looking into this failure.",
    )
    resolved_by = models.CharField(max_length=150, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.TextField(blank=True, default="", help_text="Why it was resolved without retry.")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    pruned_at = models.DateTimeField(
        null=True, blank=True, help_text="When retention removed its payload, record and attempt bodies."
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        permissions = [
            ("replay_event", "Can replay events"),
            ("rollback_event", "Can roll back events (deletes their Jira issues and worklogs)"),
            ("triage_event", "Can resolve failed events without retry and assign them"),
            (
                "view_sensitive_data",
                "Can view sensitive audit data (payloads, records, request/response bodies)",
            ),
        ]
        indexes = [
            # Also serves lookups by tenant alone.
            models.Index(fields=["tenant", "name", "object_id", "status"]),
            # Also serves lookups by status alone.
            # The Failed events list groups and filters by reason in the database (audit.admin.ReasonFilter).
            models.Index(fields=["status", "failure_reason"], name="audit_event_status_reason"),
            # Equality and prefix (name LIKE 'invoice.%': the API's kind filter, reconcile).
            models.Index(fields=["name"], opclasses=["varchar_pattern_ops"], name="audit_event_name_prefix"),
            models.Index(fields=["object_id"], name="audit_event_object_id"),
            models.Index(fields=["body_hash"], name="audit_event_body_hash"),
            models.Index(fields=["jira_key"], condition=~models.Q(jira_key=""), name="audit_event_jira_key"),
            models.Index(
                fields=["wait_until"],
                condition=models.Q(wait_until__isnull=False),
                name="audit_event_wait_until",
            ),
            models.Index(
                fields=["duplicate_of"],
                condition=models.Q(duplicate_of__isnull=False),
                name="audit_event_duplicate",
            ),
            models.Index(
                fields=["assigned_to"],
                condition=models.Q(assigned_to__isnull=False),
                name="audit_event_assigned",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "delivery_id"],
                condition=~models.Q(delivery_id=""),
                name="uniq_event_delivery",
            )
        ]

    def __str__(self):
        return f"#{self.pk} {self.name} {self.object_id} ({self.get_status_display().lower()})"

    def save(self, *args, update_fields=None, **kwargs):
        """Keeps `failure_reason` in step with the status and detail (it is empty unless failed)."""
        self.failure_reason = failure_reason(self.status_detail) if self.status == self.Status.FAILED else ""
        if update_fields is not None and {"status", "status_detail"} & set(update_fields):
            update_fields = {*update_fields, "failure_reason"}
        super().save(*args, update_fields=update_fields, **kwargs)

    @property
    def is_stale(self):
        """Processing for longer than the task timeout (Q_TIMEOUT): django-q2 has stopped that run, so the
        event may be taken over (by process_event, a replay or a rollback)."""
        return (
            self.status == self.Status.PROCESSING
            and self.started_at is not None
            and self.started_at < timezone.now() - timedelta(seconds=task_timeout())
        )


class FailedEventManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(status=Event.Status.FAILED)


class FailedEvent(Event):
    """The failed events, grouped by reason in their own admin list (like django-q2's failed tasks)."""

    objects = FailedEventManager()

    class Meta:
        proxy = True
        verbose_name = "failed event"
        ordering = ["-received_at", "-id"]

    @property
    def reason(self):
        return self.failure_reason or failure_reason(self.status_detail)


class Attempt(models.Model):
    """One outbound call made for an event (request and response encrypted)."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="attempt_set")
    action = models.CharField(max_length=200, help_text="What was called, e.g. POST /rest/api/3/issue.")
    request = EncryptedJSONField(null=True, blank=True)
    response = EncryptedTextField(blank=True, default="")
    http_status = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)
    actor = models.CharField(max_length=150, default="worker", help_text="worker, command or admin user.")
    previous = EncryptedJSONField(
        null=True,
        blank=True,
        help_text="For a change to an issue or worklog: what Jira held before it and right after it "
        '({"before": …, "after": …}), so a rollback can put it back and notice later edits.',
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.action} → {self.http_status or self.error[:40]}"


class Alert(models.Model):
    """One alert per tenant, kind, subject and clock hour: the first occurrence mails the admins, later
    ones in the same hour only count (audit.alerts)."""

    class Kind(models.TextChoices):
        EVENT_FAILED = "event_failed", "Event failed"
        NEEDS_RECONNECT = "needs_reconnect", "Connection needs reconnect"
        WEBHOOK_LAPSED = "webhook_lapsed", "Jira webhook lapsed"
        TOKEN_EXPIRING = "token_expiring", "Jira token expiring"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    subject = models.CharField(
        max_length=100, help_text="What it is about: an event kind (invoice, time_entry…) or a connection."
    )
    hour = models.DateTimeField(help_text="Start of the clock hour the occurrences are counted in.")
    occurrences = models.PositiveIntegerField(default=1)
    mailed = models.BooleanField(default=False, help_text="Mailed to ADMINS on its first occurrence.")
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()

    class Meta:
        ordering = ["-hour", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "kind", "subject", "hour"], name="uniq_alert_per_hour")
        ]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.subject} ×{self.occurrences}"


class ReplayBatch(models.Model):
    """A group of events replayed by one background task (connector.replay.run_batch), with its progress: the
    Failed events list queues one for a large selection instead of replaying inside the web request."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"
        FAILED = "failed", "Stopped by an error"

    description = models.CharField(max_length=300, help_text="What was selected, e.g. the reason.")
    event_ids = models.JSONField(default=list, help_text="The selected events' ids, oldest first.")
    requested_by = models.CharField(max_length=150)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0, help_text="Events gone through so far.")
    queued = models.PositiveIntegerField(default=0, help_text="Events queued for processing again.")
    refused = models.PositiveIntegerField(default=0, help_text="Events not replayed (e.g. rolled back).")
    detail = models.TextField(
        blank=True, default="", help_text="The first refusals, or the error that stopped it."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "replay batch"
        verbose_name_plural = "replay batches"

    def __str__(self):
        return f"Replay #{self.pk}: {self.description}"

    @property
    def progress(self):
        """ "12,000 of 22,013 (54 %)"."""
        percent = round(100 * self.done / self.total) if self.total else 100
        return f"{self.done:,} of {self.total:,} ({percent} %)"
