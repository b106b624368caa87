"""The per-tenant health panel on the admin index and the operator API's tenants: what needs an operator, at a
glance (counts, no content)."""

from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Count, Min, Q
from django.utils import timezone

from audit.models import Alert, Event
from connector.jira import quota
from connector.jira.quota_store import store
from connector.models import QuotaUsage, ReconcileState
from tenants.expiry import EXPIRY_WARNINGS
from tenants.models import ConnectionStatus, FreshBooksAccount, FreshBooksWebhook, JiraSite, Tenant


@dataclass
class TenantHealth:
    tenant: Tenant
    failed_24h: int = 0
    alerts_24h: int = 0
    needs_reconnect: list = field(default_factory=list)  # "FreshBooks", "Jira"
    jira_webhooks: str = ""  # "" fine; "lapsed …" or "failing: …"
    callbacks_unverified: int = 0
    oldest_queued_seconds: float | None = None
    last_reconcile: str | None = None
    queued: int = 0  # events waiting in the queue
    freshbooks: str = ConnectionStatus.DISCONNECTED  # the FreshBooks account's ConnectionStatus
    jira: str = ConnectionStatus.DISCONNECTED  # the Jira site's ConnectionStatus
    reconcile: ReconcileState | None = None
    waiting: int = 0  # events waiting (a paused tenant's held events, Jira's quota…)
    jira_connected: bool = False  # a Jira site is set up (not "Not connected")
    callbacks: int = 0  # FreshBooks callbacks registered
    jira_points: int = 0  # Jira points spent this UTC hour (estimated, connector.jira.quota)
    jira_pool: str = ""  # oauth (the app's hourly pool), api_token or data_center
    jira_paused: str = ""  # "until 14:00 UTC (jira-quota-global-based)" while Jira's quota pauses its calls

    @property
    def paused_since(self):
        return self.tenant.paused_at

    @property
    def jira_webhooks_shown(self):
        """ "not set up" without a Jira site or before its webhooks are registered; else "ok" or the problem."""
        return self.jira_webhooks or ("ok" if self.jira_connected else "not set up")

    @property
    def attention(self):
        return bool(
            self.failed_24h
            or self.needs_reconnect
            or self.jira_webhooks
            or self.callbacks_unverified
            or self.paused_since
        )


def last_reconcile(state):
    """The tenant's last reconcile pass and its result, as text (its connector.ReconcileState, or None)."""
    if state is None or not state.last_result:
        return "never"
    if state.last_result == ReconcileState.Result.RUNNING:
        return f"running since {timezone.localtime(state.last_started_at):%Y-%m-%d %H:%M}"
    when = timezone.localtime(state.last_finished_at or state.last_started_at)
    return f"{state.get_last_result_display().lower()} at {when:%Y-%m-%d %H:%M}"


def jira_pool(now=None):
    """The OAuth app's hourly pool, for the panel's caption: {"points": spent this UTC hour (estimated, every
    tenant), "remaining": Jira's last remaining figure this hour or None, "limit", "paused": "until 14:00 UTC"
    or ""}."""
    now = (now or timezone.now()).timestamp()
    spent = QuotaUsage.objects.filter(hour=quota.hour_of(now), pool="oauth").values_list("points", flat=True)
    kept = store().remaining(quota.POOL)
    fresh = kept and int(kept[2]) // 3600 == int(now) // 3600
    paused = store().paused([quota.POOL], now)
    return {
        "points": sum(spent),
        "remaining": kept[0] if fresh else None,
        "limit": kept[1] if fresh else None,
        "paused": f"until {quota.when(paused[0])} ({paused[1]})" if paused else "",
    }


def expiring(site, now):
    """ "Jira token expires YYYY-MM-DD" when the site's API token or personal access token expires within
    EXPIRY_WARNINGS[0] days (or has expired), else ""."""
    expires = site.credentials_expire_on
    if expires is None or site.auth_method == JiraSite.AuthMethod.OAUTH2:
        return ""
    days = (expires - timezone.localdate(now)).days
    if days > EXPIRY_WARNINGS[0]:
        return ""
    return f"Jira token {'expired' if days < 0 else 'expires'} {expires:%Y-%m-%d}"


def tenant_health(now=None, tenants=None):
    """[TenantHealth] of `tenants` (default: every active tenant), in nine queries plus one per Jira site (its
    quota pauses) whatever their number."""
    now = now or timezone.now()
    day_ago = now - timedelta(hours=24)
    tenants = Tenant.objects.filter(active=True) if tenants is None else tenants
    health = {t.pk: TenantHealth(t) for t in tenants}
    failed_today = Q(status=Event.Status.FAILED, received_at__gte=day_ago)
    waiting = Q(status=Event.Status.WAITING)
    for row in (
        Event.objects.filter(failed_today | Q(status=Event.Status.QUEUED) | waiting, tenant__in=health)
        .values("tenant")
        .annotate(
            failed=Count("id", filter=failed_today),
            oldest=Min("received_at", filter=Q(status=Event.Status.QUEUED)),
            waiting=Count("id", filter=waiting),
            queued=Count("id", filter=Q(status=Event.Status.QUEUED)),
        )
    ):
        item = health[row["tenant"]]
        item.failed_24h, item.waiting, item.queued = row["failed"], row["waiting"], row["queued"]
        if row["oldest"]:
            item.oldest_queued_seconds = (now - row["oldest"]).total_seconds()
    for row in (
        Alert.objects.filter(tenant__in=health, hour__gte=day_ago).values("tenant").annotate(n=Count("id"))
    ):
        health[row["tenant"]].alerts_24h = row["n"]
    for tenant_id, status in FreshBooksAccount.objects.filter(tenant__in=health).values_list(
        "tenant", "status"
    ):
        health[tenant_id].freshbooks = status
        if status == ConnectionStatus.NEEDS_RECONNECT:
            health[tenant_id].needs_reconnect.append("FreshBooks")
    for site in JiraSite.objects.filter(tenant__in=health).exclude(status=ConnectionStatus.DISCONNECTED):
        item = health[site.tenant_id]
        item.jira = site.status
        item.jira_connected = bool(site.webhook_ids)
        if site.status == ConnectionStatus.NEEDS_RECONNECT:
            item.needs_reconnect.append("Jira")
        elif expiring(site, now):
            item.needs_reconnect.append(expiring(site, now))
        if site.webhook_expires_at and site.webhook_expires_at <= now:
            item.jira_webhooks = f"lapsed {site.webhook_expires_at:%Y-%m-%d %H:%M}"
        elif site.webhook_error:
            item.jira_webhooks = "failing (see the Jira site)"
    hooks = FreshBooksWebhook.objects.filter(account__tenant__in=health).values("account__tenant")
    for row in hooks.annotate(n=Count("id"), unverified=Count("id", filter=Q(verified=False))):
        item = health[row["account__tenant"]]
        item.callbacks, item.callbacks_unverified = row["n"], row["unverified"]
    hour = quota.hour_of(now.timestamp())
    for row in QuotaUsage.objects.filter(tenant__in=health, hour=hour):
        health[row.tenant_id].jira_points += row.points
        health[row.tenant_id].jira_pool = row.pool
    for site in JiraSite.objects.filter(tenant__in=health).exclude(status=ConnectionStatus.DISCONNECTED):
        limits = quota.Policy(site)
        paused = store().paused(limits.quota_scopes(), now.timestamp())
        if paused:
            health[site.tenant_id].jira_paused = f"until {quota.when(paused[0])} ({paused[1]})"
    states = {state.tenant_id: state for state in ReconcileState.objects.filter(tenant__in=health)}
    for item in health.values():
        item.reconcile = states.get(item.tenant.pk)
        item.last_reconcile = last_reconcile(item.reconcile)
    return list(health.values())
