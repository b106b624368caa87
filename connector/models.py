from django.core.validators import MinValueValidator
from django.db import models

from connector.kinds import mapping_event_choices
from tenants.models import Tenant


class IssueMapping(models.Model):
    """How one FreshBooks event becomes a Jira issue for a tenant: templates over the fetched record."""

    class PaymentKind(models.TextChoices):
        ANY = "", "Any"
        RECEIVED = "received", "Received"
        FAILED = "failed", "Failed"
        REFUNDED = "refunded", "Refunded"

    class UserSource(models.TextChoices):
        NONE = "", "Leave unset"
        CLIENT = "client", "Matched FreshBooks client"
        VENDOR = "vendor", "Matched FreshBooks vendor"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="mappings")
    name = models.CharField(max_length=120)
    event = models.CharField(
        max_length=64, choices=mapping_event_choices(), help_text="FreshBooks event, e.g. invoice.create."
    )
    payment_kind = models.CharField(max_length=10, choices=PaymentKind.choices, blank=True, default="")
    condition = models.CharField(
        max_length=500,
        blank=True,
        default="",
        help_text="Optional template; the mapping applies only when it renders to a true-ish value.",
    )
    project_key = models.CharField(max_length=32)
    issue_type = models.CharField(max_length=64, default="Task")
    issue_type_id = models.CharField(
        max_length=32,
        blank=True,
        default="",
        help_text="The issue type's id in the project, from Jira's create metadata (filled in when the mapping "
        "is checked against Jira, or on its first create): creates name the type by id.",
    )
    summary_template = models.TextField()
    description_template = models.TextField(blank=True, default="")
    labels = models.JSONField(default=list, blank=True)
    parent_key = models.CharField(
        max_length=32, blank=True, default="", help_text="Epic or parent issue key."
    )
    custom_fields = models.JSONField(
        default=dict, blank=True, help_text='{"customfield_10071": "{{ invoice.invoice_number }}"}'
    )
    custom_field_types = models.JSONField(
        default=dict,
        blank=True,
        help_text="Optional value type per custom field, overriding the type Jira reports, e.g. "
        '{"customfield_10071": "string"}. Types: string, text, number, date, datetime, option, options, strings, '
        "user, users, json, auto.",
    )
    reporter_from = models.CharField(max_length=10, choices=UserSource.choices, blank=True, default="")
    assignee_from = models.CharField(max_length=10, choices=UserSource.choices, blank=True, default="")
    enabled = models.BooleanField(default=True)
    order = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "order", "id"]
        verbose_name = "issue mapping"

    def __str__(self):
        return f"{self.name} ({self.event})"


class WorklogRule(models.Model):
    """Which Jira issue a FreshBooks time entry is logged on; rules are tried in order."""

    class MatchKind(models.TextChoices):
        NOTE_KEY = "note_key", "Jira issue key in the entry's note"
        PROJECT = "project", "FreshBooks project id"
        CLIENT = "client", "FreshBooks client id"
        SERVICE = "service", "FreshBooks service id"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="worklog_rules")
    match_kind = models.CharField(max_length=10, choices=MatchKind.choices)
    match_value = models.CharField(max_length=64, blank=True, default="")
    issue_key = models.CharField(max_length=32, blank=True, default="")
    order = models.PositiveIntegerField(default=0)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["tenant", "order", "id"]
        verbose_name = "worklog rule"

    def __str__(self):
        if self.match_kind == self.MatchKind.NOTE_KEY:
            return "Issue key in note"
        return f"{self.get_match_kind_display()} {self.match_value} → {self.issue_key}"


class JiraUserMatch(models.Model):
    """An explicit FreshBooks client/vendor → Jira user match (else Jira user search by email)."""

    class Kind(models.TextChoices):
        CLIENT = "client", "Client"
        VENDOR = "vendor", "Vendor"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="user_matches")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    freshbooks_id = models.CharField(max_length=64)
    jira_account_id = models.CharField(max_length=128)
    note = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        verbose_name = "Jira user match"
        verbose_name_plural = "Jira user matches"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "kind", "freshbooks_id"], name="uniq_jira_user_match")
        ]

    def __str__(self):
        return f"{self.kind} {self.freshbooks_id} → {self.jira_account_id}"


class Link(models.Model):
    """The idempotency ledger: one row per (tenant, FreshBooks object, purpose) claimed before a Jira write."""

    class Purpose(models.TextChoices):
        ISSUE = "issue", "Issue"
        WORKLOG = "worklog", "Worklog"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        CREATED = "created", "Created"
        IN_DOUBT = "in_doubt", "In doubt"
        DELETED = "deleted", "Deleted in Jira"
        ROLLED_BACK = "rolled_back", "Rolled back"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="links")
    dedupe_key = models.CharField(max_length=200, unique=True)
    purpose = models.CharField(max_length=10, choices=Purpose.choices, default=Purpose.ISSUE)
    object_type = models.CharField(max_length=32)
    object_id = models.CharField(max_length=64)
    jira_issue_id = models.CharField(max_length=32, blank=True, default="")
    jira_issue_key = models.CharField(max_length=32, blank=True, default="", db_index=True)
    jira_worklog_id = models.CharField(max_length=32, blank=True, default="")
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    event = models.ForeignKey(
        "audit.Event", on_delete=models.SET_NULL, null=True, blank=True, related_name="links"
    )
    jira_changed_at = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Jira's timestamp (epoch ms) of the newest Jira delivery applied to this link: "
        "an older delivery never undoes it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "object_type", "object_id"])]

    def __str__(self):
        return f"{self.object_type} {self.object_id} → {self.jira_issue_key or '?'} ({self.state})"


class ReconcileState(models.Model):
    """Where a tenant's reconcile stands: its watermark, its interval and how its last pass went.

    `watermark`: every FreshBooks record updated before it was seen by a clean pass (UTC). It moves
    forward only after a clean pass; the next pass lists from it minus an overlap (connector.reconcile).
    """

    class Result(models.TextChoices):
        NEVER = "", "Never run"
        RUNNING = "running", "Running"
        OK = "ok", "Clean"
        FAILED = "failed", "Failed"

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="reconcile")
    interval_minutes = models.PositiveIntegerField(
        default=60,
        validators=[MinValueValidator(5)],
        help_text="How often the schedule reconciles this tenant (minutes, at least 5). "
        "A deployment without a public URL can run on this polling alone.",
    )
    enabled = models.BooleanField(default=True, help_text="Reconcile on the schedule.")
    watermark = models.DateTimeField(
        null=True, blank=True, help_text="Records updated before this were seen by a clean pass."
    )
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_result = models.CharField(max_length=8, choices=Result.choices, blank=True, default="")
    last_detail = models.TextField(blank=True, default="")
    last_actor = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        verbose_name = "reconcile status"
        verbose_name_plural = "reconcile status"
        permissions = [("reconcile_now", "Can run a reconcile now")]

    def __str__(self):
        return f"Reconcile of {self.tenant}"


class QuotaState(models.Model):
    """Shared state of one Jira rate limit, seen by every worker process on every host (connector.jira.quota;
    kept in Redis instead when REDIS_URL is set). `scope` names the limit: "pool:oauth" (the OAuth app's hourly
    pool, every OAuth site), "site:<id>" (one site's quota), "burst:<site id>:<METHOD> <endpoint>",
    "issue:<site id>:<issue key>" (per-issue write pacing)."""

    scope = models.CharField(max_length=200, unique=True)
    until = models.DateTimeField(
        null=True, blank=True, help_text="No call under this scope before this time."
    )
    reason = models.CharField(max_length=100, blank=True, default="", help_text="Jira's RateLimit-Reason.")
    slots = models.JSONField(default=list, blank=True, help_text="Epoch seconds of recent calls (pacing).")
    remaining = models.PositiveIntegerField(null=True, blank=True, help_text="Jira's last remaining points.")
    limit = models.PositiveIntegerField(null=True, blank=True, help_text="Jira's quota, points per window.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return self.scope


class QuotaUsage(models.Model):
    """Jira points spent (estimated from Jira's published cost model) by one tenant in one pool in one UTC hour."""

    hour = models.DateTimeField(help_text="Start of the UTC hour.")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="quota_usage")
    pool = models.CharField(
        max_length=20, help_text="oauth (the app's hourly pool), api_token or data_center."
    )
    points = models.PositiveIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hour", "tenant", "pool"], name="uniq_quota_usage_per_hour")
        ]

    def __str__(self):
        return f"{self.tenant_id} {self.pool} {self.hour:%Y-%m-%d %H}:00 {self.points} points"
