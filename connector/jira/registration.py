"""Jira webhook registration: keep the site's webhooks registered and alive (deliveries: connector.jira.inbound).

OAuth 2.0 sites get *dynamic* webhooks (``/rest/api/3/webhook``): they expire after 30 days, are
refreshed when due and carry no secret (deliveries carry a JWT signed with the OAuth client secret). Dynamic webhooks cannot carry
worklog events, so worklog deletions are only seen on API-token sites.

API-token sites get one *admin* webhook (``/rest/webhooks/1.0/webhook``, needs Jira administrator
rights) with a generated secret that Jira uses to sign each delivery (``X-Hub-Signature``).

Registration is idempotent: Jira is listed first, and a webhook that already matches is reused, so
running it twice, or in a fresh process, never adds a second set. The ids on file are the site's own
wherever they point: after a PUBLIC_BASE_URL change they are deleted (dynamic; Jira allows one URL per app)
or moved (admin) before anything is registered, and never refreshed at the old URL.
"""

import contextlib
import logging
import re
import secrets
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from audit import alerts
from connector.errors import ConnectorError, JiraError, ReconnectRequired, TokenRefreshError
from connector.jira.client import JiraClient
from connector.jira.keys import is_project_key
from tenants import tokens
from tenants.models import ConnectionStatus, JiraSite

log = logging.getLogger(__name__)

DYNAMIC = "/rest/api/3/webhook"
DYNAMIC_REFRESH = "/rest/api/3/webhook/refresh"
ADMIN = "/rest/webhooks/1.0/webhook"
ADMIN_ONE = "/rest/webhooks/1.0/webhook/{id}"

# The dynamic-webhook API only allows issue, comment and issue-property events (no worklog events).
DYNAMIC_EVENTS = ["jira:issue_updated", "jira:issue_deleted"]
ADMIN_EVENTS = ["jira:issue_updated", "jira:issue_deleted", "worklog_deleted"]
LIFETIME = timedelta(days=30)  # dynamic webhooks expire 30 days after registration or refresh
REFRESH_WITHIN = timedelta(days=7)
PAGE_SIZE = 100
ASCII_ID = re.compile(r"[0-9]{1,18}")
ODD_ANSWER = (ValueError, TypeError, AttributeError, KeyError)  # Jira answered in a shape it should not


class WebhookError(ConnectorError):
    """Registration cannot proceed (nothing to watch, or Jira refused an item)."""


# --- expiry and URLs -------------------------------------------------------------------------------


def parse_expiry(value):
    """Jira's ``expirationDate``: epoch milliseconds (the spec) or an ISO string (every example). → aware datetime."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str) and ASCII_ID.fullmatch(value.strip().lstrip("-")):
        value = int(value.strip())
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)
    return None


def dynamic_url():
    return settings.PUBLIC_BASE_URL + reverse("jira-webhook")


def admin_url(site):
    return settings.PUBLIC_BASE_URL + reverse("jira-admin-webhook", args=[site.uuid])


def project_keys(tenant):
    """The projects the tenant's enabled mappings write to (valid Jira keys only: they go into JQL)."""
    keys = tenant.mappings.filter(enabled=True).values_list("project_key", flat=True)
    return sorted({k.strip().upper() for k in keys if is_project_key(k.strip().upper())})


def jql_for(keys):
    return f"project in ({', '.join(keys)})"


def _same_jql(a, b):
    return " ".join((a or "").split()).lower() == " ".join((b or "").split()).lower()


def int_ids(values):
    """The webhook ids among `values` (ints, or ASCII-digit strings: int() would also take "١٢" or " 7 "),
    as ints; others are dropped."""
    out = []
    for value in values or []:
        if isinstance(value, int) and not isinstance(value, bool):
            out.append(value)
        elif isinstance(value, str) and ASCII_ID.fullmatch(value):
            out.append(int(value))
    return out


# --- registration and refresh ----------------------------------------------------------------------


def register(site, actor="worker"):
    """(Re-)register the site's webhooks. Returns True on success; a failure is saved on the site."""
    return _run(site, actor, refreshing=False)


def refresh(site, actor="worker", force=False):
    """Refresh webhooks expiring within 7 days, then check they still exist; re-register missing ones."""
    return _run(site, actor, refreshing=True, force=force)


def eligible_sites(tenant_slug=None):
    sites = JiraSite.objects.select_related("tenant").filter(tenant__active=True)
    sites = sites.exclude(status=ConnectionStatus.DISCONNECTED)
    if tenant_slug:
        sites = sites.filter(tenant__slug=tenant_slug)
    return sites.order_by("tenant__slug")


def refresh_all():
    """The daily django-q2 task: refresh every connected site's webhooks. Returns a summary."""
    results = {}
    for site in eligible_sites():
        try:
            results[site.tenant.slug] = refresh(site)
        except Exception:  # one site's surprise must not stop the others' refresh
            log.exception("Refreshing Jira webhooks for %s failed", site.tenant.slug)
            results[site.tenant.slug] = False
        alerts.webhook_lapsed(site)
    return {"ok": sum(results.values()), "failed": [slug for slug, ok in results.items() if not ok]}


SYNC_LEASE = timedelta(
    minutes=15
)  # longer than any run (each call's waits stay under 2 min: connector.retry)


def _claim(site):
    """Take the site's registration lease: one registration per site at a time (admin action vs. the daily task)
    without a database transaction held open while Jira answers. False when another run holds it."""
    now = timezone.now()
    free = Q(webhook_sync_until__isnull=True) | Q(webhook_sync_until__lt=now)
    return bool(JiraSite.objects.filter(free, pk=site.pk).update(webhook_sync_until=now + SYNC_LEASE))


def _run(site, actor, refreshing, force=False):
    if site.auth_method == JiraSite.AuthMethod.OAUTH2 and site.status == ConnectionStatus.CONNECTED:
        # Refresh an expiring token first (committed on its own). A failure here is met again by the first
        # call below, which reports it on the site.
        with contextlib.suppress(ReconnectRequired, TokenRefreshError):
            tokens.access_token(site)
    if not _claim(site):
        site.webhook_error = (
            "Another webhook registration of this site is running; try again in a few minutes."
        )
        return False
    try:
        locked = JiraSite.objects.select_related("tenant").get(pk=site.pk)
        ok = _sync(locked, actor, refreshing, force)
    finally:
        JiraSite.objects.filter(pk=site.pk).update(webhook_sync_until=None)
    for name in ("webhook_ids", "webhook_expires_at", "webhook_refreshed_at", "webhook_error", "status"):
        setattr(site, name, getattr(locked, name))
    return ok


def _sync(locked, actor, refreshing, force):
    """One registration run on the leased site (no transaction: Jira calls never wait inside one)."""
    client = JiraClient(locked, actor=actor)
    try:
        if locked.status == ConnectionStatus.DISCONNECTED:
            raise WebhookError("The Jira site is not connected.")
        if locked.auth_method == JiraSite.AuthMethod.OAUTH2:
            _sync_dynamic(locked, client, refreshing=refreshing, force=force)
        else:
            _sync_admin(locked, client)
    except (ConnectorError, *ODD_ANSWER) as exc:  # a vendor error or a WebhookError
        if isinstance(exc, ODD_ANSWER):
            log.exception("Unexpected answer from Jira while syncing webhooks of %s", locked)
        reason = _explain(locked, exc)
        JiraSite.objects.filter(pk=locked.pk).update(webhook_error=reason, updated_at=timezone.now())
        locked.refresh_from_db()  # drop half-made changes; the last good registration stays
        log.error("Jira webhooks for %s (%s): %s", locked, locked.tenant.slug, reason)
        return False
    locked.webhook_error = ""
    locked.webhook_refreshed_at = timezone.now()
    locked.save(
        update_fields=[
            "webhook_ids",
            "webhook_secret",
            "webhook_expires_at",
            "webhook_refreshed_at",
            "webhook_error",
            "updated_at",
        ]
    )
    return True


def _explain(site, exc):
    if isinstance(exc, JiraError) and exc.status == 403 and site.auth_method != JiraSite.AuthMethod.OAUTH2:
        return (
            "Jira refused to register the admin webhook (403): the connected user needs Jira administrator "
            "rights. The connector keeps working, but deletions and moves in Jira are not noticed."
        )
    if isinstance(exc, JiraError) and exc.status in (401, 403):
        return f"{exc} — check that the app has the manage:jira-webhook scope, or reconnect."
    if isinstance(exc, ODD_ANSWER):
        return f"Jira answered in an unexpected shape ({type(exc).__name__}: {exc}); details in the log."
    return str(exc)


def _list_dynamic(client):
    found, start = [], 0
    while True:
        page = client.request("GET", DYNAMIC, params={"startAt": start, "maxResults": PAGE_SIZE}) or {}
        values = page.get("values") or []
        found += [w for w in values if isinstance(w, dict)]
        if page.get("isLast", True) or not values:
            return found
        start += len(values)


def _sync_dynamic(site, client, refreshing, force):
    keys = project_keys(site.tenant)
    if not keys:
        raise WebhookError("No enabled issue mapping names a Jira project: nothing to watch.")
    jql, url = jql_for(keys), dynamic_url()
    stored = set(int_ids(site.webhook_ids))
    listed = _list_dynamic(client)  # Jira silently ignores unknown ids on refresh: the list tells what exists
    # The ids on file are this site's own wherever they point. At another URL (PUBLIC_BASE_URL changed) they
    # are deleted first: Jira allows one URL per app, and a refresh must never keep a dead URL alive.
    moved = sorted(w["id"] for w in listed if w.get("id") in stored and w.get("url") != url)
    if moved:
        client.request("DELETE", DYNAMIC, json={"webhookIds": moved})
        log.info("Deleted Jira webhooks %s of %s registered at an old URL", moved, site)
        listed = [w for w in listed if w.get("id") not in moved]
    current = sorted(w["id"] for w in listed if w.get("id") in stored)
    refreshed_until = None
    if refreshing and current:
        due = site.webhook_expires_at is None or site.webhook_expires_at <= timezone.now() + REFRESH_WITHIN
        if due or force:
            answer = client.request("PUT", DYNAMIC_REFRESH, json={"webhookIds": current}) or {}
            refreshed_until = parse_expiry(answer.get("expirationDate"))
    ours = [w for w in listed if w.get("url") == url]
    claimed = set()
    for other in JiraSite.objects.filter(cloud_id=site.cloud_id, auth_method=site.auth_method).exclude(
        pk=site.pk
    ):
        claimed |= set(int_ids(other.webhook_ids))

    def fits(hook):
        return set(hook.get("events") or []) == set(DYNAMIC_EVENTS) and _same_jql(hook.get("jqlFilter"), jql)

    candidates = [w for w in ours if fits(w) and w.get("id") not in claimed]
    candidates.sort(key=lambda w: w.get("id") not in stored)  # prefer the ones this site already holds
    if candidates:
        keep = candidates[0]
        site.webhook_ids = [keep["id"]]
        fresh = refreshed_until if keep["id"] in current else None
        site.webhook_expires_at = fresh or parse_expiry(keep.get("expirationDate"))
        if site.webhook_expires_at is None:
            site.webhook_expires_at = timezone.now() + LIFETIME
    else:
        body = {"url": url, "webhooks": [{"events": DYNAMIC_EVENTS, "jqlFilter": jql}]}
        answer = client.request("POST", DYNAMIC, json=body) or {}
        results = answer.get("webhookRegistrationResult") or [{}]
        created = results[0].get("createdWebhookId") if isinstance(results[0], dict) else None
        if created is None:
            errors = results[0].get("errors") if isinstance(results[0], dict) else None
            raise WebhookError(
                f"Jira did not register the webhook: {'; '.join(map(str, errors or ['no id returned']))}"
            )
        site.webhook_ids = [created]
        site.webhook_expires_at = timezone.now() + LIFETIME
        log.info("Registered Jira webhook %s for %s (%s)", created, site, jql)
    # Webhooks this site registered earlier that no longer fit (e.g. the mapped projects changed).
    stale = sorted({w["id"] for w in ours if w.get("id") in stored} - set(site.webhook_ids))
    if stale:
        client.request("DELETE", DYNAMIC, json={"webhookIds": stale})


def _admin_id(hook):
    if hook.get("id") is not None:
        return str(hook["id"])
    return str(hook.get("self") or "").rstrip("/").rsplit("/", 1)[-1]


def _sync_admin(site, client):
    keys = project_keys(site.tenant)
    url = admin_url(site)
    listed = client.request("GET", ADMIN)
    listed = listed if isinstance(listed, list) else []
    stored = {str(i) for i in site.webhook_ids or []}
    # The id on file is this site's own wherever it points (PUBLIC_BASE_URL may have changed): it is moved
    # to the current URL rather than left delivering to a dead one.
    ours = [w for w in listed if isinstance(w, dict) and (w.get("url") == url or _admin_id(w) in stored)]
    ours.sort(key=lambda w: _admin_id(w) not in stored)
    body = {
        "name": f"ml-connector ({site.tenant.slug})",
        "url": url,
        "events": ADMIN_EVENTS,
        "filters": {"issue-related-events-section": jql_for(keys) if keys else ""},
        "excludeBody": False,
    }
    if ours:
        keep = ours[0]
        hook_id = _admin_id(keep)
        known = hook_id in stored and site.webhook_secret
        same = (
            keep.get("url") == url
            and set(keep.get("events") or []) == set(ADMIN_EVENTS)
            and _same_jql(
                (keep.get("filters") or {}).get("issue-related-events-section"),
                body["filters"]["issue-related-events-section"],
            )
            and keep.get("enabled", True)
        )
        if not (known and same):
            # Jira never shows the secret: without it on file, rotate it.
            secret = site.webhook_secret if known else secrets.token_urlsafe(32)
            client.request(
                "PUT", ADMIN_ONE.format(id=hook_id), json={**body, "enabled": True, "secret": secret}
            )
            site.webhook_secret = secret
        for extra in ours[1:]:
            client.request("DELETE", ADMIN_ONE.format(id=_admin_id(extra)))
    else:
        secret = secrets.token_urlsafe(32)
        created = client.request("POST", ADMIN, json={**body, "secret": secret}) or {}
        hook_id = _admin_id(created)
        if not hook_id:
            raise WebhookError("Jira did not return the new admin webhook's id.")
        site.webhook_secret = secret
        log.info("Registered Jira admin webhook %s for %s", hook_id, site)
    site.webhook_ids = [hook_id]
    site.webhook_expires_at = None  # admin webhooks do not expire
