"""Jira webhook deliveries: who sent them (signature or JWT, and which site) and what they change.

Admin webhooks of API-token sites are signed with ``X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>``
(the secret registered with them, connector.jira.registration); dynamic webhooks of OAuth sites carry a JWT
signed with the OAuth client secret and are routed to their site by ``matchedWebhookIds``.

What a delivery changes is a small ledger update, chosen through EVENT_HANDLERS (like Zulip's Jira
integration): an issue or worklog the connector created that is deleted in Jira marks its Link deleted; a
moved issue updates the stored key. Every other event is acknowledged and ignored.

The delivery id header is not signed, so a delivery is never applied over a newer one: each link keeps the
``timestamp`` (epoch ms, inside the signed body) of the newest delivery applied to it, and older ones change
nothing. A dynamic delivery's JWT is not bound to its body (no captured token shows a claim such as ``qsh``),
so the body is only a hint: before it is stored, and outside any transaction (`confirmation`), Jira is asked
about the issue (one GET, one try) and its answer is applied; Unconfirmed when Jira cannot be asked.
"""

import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import jwt
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from connector.errors import VendorError
from connector.jira.client import JiraClient
from connector.jira.registration import int_ids
from connector.models import Link
from tenants.models import JiraSite

GONE = [Link.State.DELETED, Link.State.ROLLED_BACK]
FUTURE_SKEW_MS = 60_000


class Unconfirmed(Exception):
    """Jira could not be asked about a delivery that would change a link. `retry_after`: the seconds Jira asked
    to wait (its Retry-After), 0 when it gave none."""

    def __init__(self, message, retry_after=0.0):
        super().__init__(message)
        self.retry_after = retry_after


def verify_hub_signature(secret, body, header):
    """True when ``X-Hub-Signature`` is ``sha256=<hex HMAC-SHA256(secret, raw body)>`` (constant-time)."""
    if not secret or not header:
        return False
    method, _, given = header.strip().partition("=")
    if method.lower() != "sha256" or not given:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    # Bytes: a header with non-ASCII characters is just a mismatch (compare_digest refuses such str).
    return hmac.compare_digest(expected, given.strip().lower().encode("utf-8", "replace"))


def verify_jwt(authorization):
    """Decode the delivery JWT (HS256, OAuth client secret, ``exp`` required). Raises jwt.InvalidTokenError.

    ``iat``, ``nbf`` and ``exp`` are checked with ``INBOUND_CLOCK_LEEWAY`` seconds of tolerance either way
    (Atlassian's clock and ours differ); the signature is what proves the sender.
    """
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() not in ("bearer", "jwt") or not token.strip():
        raise jwt.InvalidTokenError("no bearer token")
    if not settings.ATLASSIAN_CLIENT_SECRET:
        raise jwt.InvalidTokenError("ATLASSIAN_CLIENT_SECRET is not configured")
    return jwt.decode(
        token.strip(),
        settings.ATLASSIAN_CLIENT_SECRET,
        algorithms=["HS256"],
        options={"require": ["exp"], "verify_aud": False},
        leeway=settings.INBOUND_CLOCK_LEEWAY,
    )


def _host(url):
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:  # e.g. a malformed IPv6 literal
        return ""


def _senders(data):
    """Hosts and cloud ids named by the ``self`` links of the delivery's issue, worklog, comment and user:
    ``https://<site>/rest/...`` or ``https://api.atlassian.com/ex/jira/<cloud id>/rest/...``."""
    named = set()
    for part in ("issue", "worklog", "comment", "user"):
        value = data.get(part)
        link = value.get("self") if isinstance(value, dict) else None
        if isinstance(link, str):
            gateway = re.search(r"/ex/jira/([^/]+)/", link)
            named.add(gateway.group(1) if gateway else _host(link))
    return named - {""}


def site_for_webhook_ids(matched_ids, data=None):
    """The OAuth site that registered one of ``matchedWebhookIds`` (None when no site, or not one site, did).

    Webhook ids are numbered per Jira site, so two customers' sites can hold the same id: when the payload's
    ``self`` links name the sending site, only a site with that URL (or cloud id) qualifies.
    """
    wanted = set(int_ids(matched_ids if isinstance(matched_ids, list) else []))
    if not wanted:
        return None
    sites = JiraSite.objects.filter(auth_method=JiraSite.AuthMethod.OAUTH2).select_related("tenant")
    found = [site for site in sites.exclude(webhook_ids=[]) if wanted & set(int_ids(site.webhook_ids))]
    named = _senders(data or {})
    if named:
        found = [site for site in found if {_host(site.base_url), site.cloud_id} & named]
    return found[0] if len(found) == 1 else None


# --- what a delivery changes -----------------------------------------------------------------------------


def as_dict(value):
    return value if isinstance(value, dict) else {}


def text(value):
    """A payload value as text for the clear columns and lookups (PostgreSQL text cannot hold NUL)."""
    return str(value or "").replace("\x00", "")


def timestamp(data):
    """The delivery's ``timestamp`` (epoch ms, part of the signed body), or None when absent or odd.

    One from the future counts as now (plus a minute of clock skew): a body cannot claim a time that
    would freeze its links against every real delivery to come.
    """
    value = data.get("timestamp")
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return None
    return min(value, int(time.time() * 1000) + FUTURE_SKEW_MS)


def _not_newer(links, when):
    """The links no delivery newer than `when` has changed (an undated delivery: only untouched ones)."""
    if when is None:
        return links.filter(jira_changed_at__isnull=True)
    return links.filter(Q(jira_changed_at__isnull=True) | Q(jira_changed_at__lte=when))


def _apply(links, when, **changes):
    return _not_newer(links, when).update(**changes, jira_changed_at=when, updated_at=timezone.now())


def _no_wait(_seconds):
    """The sender waits for the answer: no backoff sleeps."""


@dataclass
class Confirmation:
    """What Jira answered about the issue a dynamic delivery names, asked before the storing transaction.

    `asked` False: no link would change, so Jira was not asked. `issue`: the issue as Jira shows it now (with
    its ``key``), None when Jira says it does not exist."""

    asked: bool = False
    issue: dict | None = None

    def issue_now(self):
        """The issue Jira showed; Unconfirmed when Jira was not asked (a link appeared meanwhile: Jira sends
        the delivery again)."""
        if not self.asked:
            raise Unconfirmed("the delivery now concerns a link; Jira is asked when it is sent again")
        return self.issue


def _jira_issue(site, issue_id):
    """The issue as Jira shows it now (with its ``key``), or None when Jira says it does not exist.

    One try (no retry loop: the sender is waiting, and Jira sends a refused delivery again). Raises
    Unconfirmed (with Jira's ``retry_after``) when Jira cannot be asked (network, 5xx, 429, an answer that is
    not the issue's JSON, a refused or lapsed grant)."""
    if not issue_id:
        return None
    client = JiraClient(site, actor="jira-webhook", sleep=_no_wait)
    client.retries = False
    try:
        return client.get_issue(issue_id, fields=("summary",))
    except VendorError as exc:
        raise Unconfirmed(str(exc), retry_after=exc.retry_after) from exc


def _issue_links(site, issue_id, key):
    match = Q(jira_issue_id=issue_id) if issue_id else Q(pk__in=[])
    if key:
        match |= Q(jira_issue_id="", jira_issue_key=key)
    return Link.objects.filter(match, tenant=site.tenant)


def _deleted_links(site, data):
    """(issue id, the links an issue_deleted would mark deleted)."""
    issue = as_dict(data.get("issue"))
    issue_id = text(issue.get("id"))
    return issue_id, _issue_links(site, issue_id, text(issue.get("key"))).exclude(state__in=GONE)


def _updated_links(site, data):
    """(issue id, the key the payload gives, the links an issue_updated may re-key); None for an odd key."""
    issue = as_dict(data.get("issue"))
    issue_id, key = text(issue.get("id")), text(issue.get("key"))
    items = as_dict(data.get("changelog")).get("items")
    items = items if isinstance(items, list) else []
    old_keys = [
        text(item.get("fromString"))
        for item in items
        if isinstance(item, dict) and str(item.get("field", "")).lower() == "key" and item.get("fromString")
    ]
    if not key or len(key) > 32:
        return None
    match = Q(jira_issue_id=issue_id) if issue_id else Q(pk__in=[])
    if old_keys:
        match |= Q(jira_issue_id="", jira_issue_key__in=old_keys)
    return issue_id, key, Link.objects.filter(match, tenant=site.tenant)


def confirmation(site, data):
    """Ask Jira about a dynamic delivery before it is stored — outside any database transaction, so a slow
    Jira holds no lock and a token refreshed on the way is committed at once. Jira is asked (one GET of the
    issue, one try) only when the delivery would change a link. Raises Unconfirmed."""
    name = text(data.get("webhookEvent"))
    if name == "jira:issue_deleted":
        issue_id, links = _deleted_links(site, data)
        needed = links.exists()
    elif name == "jira:issue_updated":
        found = _updated_links(site, data)
        issue_id = found[0] if found else ""
        needed = bool(found) and found[2].exclude(jira_issue_key=found[1]).exists()
    else:
        return Confirmation()
    return Confirmation(asked=True, issue=_jira_issue(site, issue_id)) if needed else Confirmation()


def issue_deleted(site, data, when=None, confirm=None):
    """The issue is gone, and with it every worklog the connector logged on it (with `confirm`, a
    Confirmation: only when Jira says so too). Returns the links changed."""
    _issue_id, links = _deleted_links(site, data)
    if confirm and links.exists() and confirm.issue_now() is not None:
        return 0
    return _apply(links, when, state=Link.State.DELETED)


def worklog_deleted(site, data, when=None, confirm=None):
    worklog_id = text(as_dict(data.get("worklog")).get("id"))
    if not worklog_id or confirm:  # dynamic webhooks carry no worklog events: such a body is not Jira's
        return 0
    links = Link.objects.filter(tenant=site.tenant, purpose=Link.Purpose.WORKLOG, jira_worklog_id=worklog_id)
    return _apply(links.exclude(state__in=GONE), when, state=Link.State.DELETED)


def issue_updated(site, data, when=None, confirm=None):
    """A moved or renamed issue: keep the stored key in step (changelog "Key" item, or the payload's key;
    with `confirm`, a Confirmation: the key Jira shows now)."""
    found = _updated_links(site, data)
    if found is None:
        return 0
    _issue_id, key, links = found
    if confirm and links.exclude(jira_issue_key=key).exists():
        key = text((confirm.issue_now() or {}).get("key"))
        if not key or len(key) > 32:
            return 0
    return _apply(links.exclude(jira_issue_key=key), when, jira_issue_key=key)


# Jira event → what it changes; every other event (comments, issue_created, …) is acknowledged and ignored.
EVENT_HANDLERS = {
    "jira:issue_deleted": issue_deleted,
    "jira:issue_updated": issue_updated,
    "worklog_deleted": worklog_deleted,
}


def acts_on(name):
    """True when the connector acts on Jira deliveries named `name` (a key of EVENT_HANDLERS). Any other
    delivery is acknowledged and nothing of it is stored: not its body, not an event."""
    return name in EVENT_HANDLERS


def _only(value, keys):
    value = as_dict(value)
    return {key: value[key] for key in keys if isinstance(value.get(key), (str, int))}


def kept(data):
    """What is stored of a delivery acted on: the parts the handlers read, nothing else (Jira embeds the whole
    issue, with description, comments and worklogs, in bodies of up to 25 MB).

    Shape: {"webhookEvent", "timestamp", "matchedWebhookIds", "issue": {"id", "key", "self"},
    "worklog": {"id", "issueId", "self"}, "changelog": {"items": [the "Key" items: field, fromString, toString]}}
    with the parts the delivery does not carry left out."""
    items = as_dict(data.get("changelog")).get("items")
    keys = [
        _only(item, ("field", "fromString", "toString"))
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict) and str(item.get("field", "")).lower() == "key"
    ]
    found = {
        "webhookEvent": text(data.get("webhookEvent"))[:64],
        "timestamp": data.get("timestamp") if isinstance(data.get("timestamp"), int) else None,
        "matchedWebhookIds": int_ids(data.get("matchedWebhookIds") or [])
        if isinstance(data.get("matchedWebhookIds"), list)
        else None,
        "issue": _only(data.get("issue"), ("id", "key", "self")),
        "worklog": _only(data.get("worklog"), ("id", "issueId", "self")),
        "changelog": {"items": keys} if keys else None,
    }
    return {key: value for key, value in found.items() if value not in (None, {}, [])}
