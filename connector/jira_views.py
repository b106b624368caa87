"""Jira webhook endpoints: verify, deduplicate, record as an audit Event and keep the ledger true.

``POST /webhooks/jira/`` receives dynamic (OAuth app) webhooks: a JWT in ``Authorization`` signed with the
OAuth client secret; the site is found by ``matchedWebhookIds``. ``POST /webhooks/jira/<site uuid>/``
receives the admin webhook of an API-token site, signed with ``X-Hub-Signature``.

The work is a tiny ledger update, so it happens inline in one short transaction: an issue or worklog
the connector created that is deleted in Jira marks its Link deleted; a moved issue updates the stored
key. Everything else is acknowledged and recorded as skipped. A repeated
``X-Atlassian-Webhook-Identifier`` is acknowledged and not acted on again.
"""

import json
import logging

import jwt
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from audit import metrics
from audit.models import Event
from connector.jira import webhooks
from connector.models import Link
from tenants.models import JiraSite

log = logging.getLogger(__name__)

IDENTIFIER = "HTTP_X_ATLASSIAN_WEBHOOK_IDENTIFIER"
GONE = [Link.State.DELETED, Link.State.ROLLED_BACK]


def _error(status, message):
    return JsonResponse({"error": message}, status=status)


def _read(request):
    """The raw body, or an error response (wrong method, body too large)."""
    if request.method != "POST":
        response = _error(405, "Only POST.")
        response["Allow"] = "POST"
        return None, response
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None, _error(400, "Bad Content-Length.")
    if declared > settings.WEBHOOK_MAX_BODY:
        return None, _error(413, "Body too large.")
    body = request.body
    if len(body) > settings.WEBHOOK_MAX_BODY:
        return None, _error(413, "Body too large.")
    return body, None


def _json(body):
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        return None
    return data if isinstance(data, dict) and isinstance(data.get("webhookEvent"), str) else None


@csrf_exempt
def dynamic_webhook(request):
    body, error = _read(request)
    if error:
        return error
    try:
        webhooks.verify_jwt(request.META.get("HTTP_AUTHORIZATION"))
    except jwt.InvalidTokenError as exc:
        log.warning("Jira webhook refused: %s", exc)
        return _error(401, "Invalid or expired token.")
    data = _json(body)
    if data is None:
        return _error(400, "Body is not a Jira webhook.")
    site = webhooks.site_for_webhook_ids(data.get("matchedWebhookIds"), data)
    if site is None:
        return _error(404, "No site registered these webhooks.")
    return _receive(request, site, data)


@csrf_exempt
def admin_webhook(request, site_uuid):
    body, error = _read(request)
    if error:
        return error
    site = JiraSite.objects.filter(uuid=site_uuid).select_related("tenant").first()
    if site is None:
        return _error(404, "Unknown site.")
    if not webhooks.verify_hub_signature(site.webhook_secret, body, request.META.get("HTTP_X_HUB_SIGNATURE")):
        log.warning("Jira webhook for %s refused: bad or missing X-Hub-Signature", site)
        return _error(401, "Bad signature.")
    data = _json(body)
    if data is None:
        return _error(400, "Body is not a Jira webhook.")
    return _receive(request, site, data)


def _receive(request, site, data):
    if not site.tenant.active:
        return _error(403, "Tenant is inactive.")
    identifier = _text(request.META.get(IDENTIFIER)).strip()
    # The identifier is unique within a site: scope it by site so two sites never collide.
    delivery_id = f"{site.uuid}:{identifier}" if identifier else ""
    if len(delivery_id) > Event._meta.get_field("delivery_id").max_length:
        return _error(400, "Delivery identifier too long.")
    name = _text(data["webhookEvent"])[:64]
    issue, worklog = _dict(data.get("issue")), _dict(data.get("worklog"))
    object_id = _text(worklog.get("id") or issue.get("id"))[:64]
    with transaction.atomic():
        try:
            with transaction.atomic():
                event = Event.objects.create(
                    tenant=site.tenant, source=Event.Source.JIRA, name=name, object_id=object_id,
                    delivery_id=delivery_id, payload=data, jira_key=_text(issue.get("key"))[:32],
                    status=Event.Status.PROCESSING, started_at=timezone.now(), attempts=1,
                )  # fmt: skip
        except IntegrityError:
            log.info("Jira delivery %s for %s already received", identifier, site)
            return JsonResponse({"ok": True, "duplicate": True})
        handler = HANDLERS.get(name)
        changed = handler(site, data) if handler else 0
        event.status = Event.Status.SUCCEEDED if changed else Event.Status.SKIPPED
        event.status_detail = (
            f"{changed} link(s) updated."
            if changed
            else ("No link of the connector is affected." if handler else f"{name} is not used.")
        )
        event.finished_at = timezone.now()
        event.save(update_fields=["status", "status_detail", "finished_at"])
    metrics.event_finished(event)
    return JsonResponse({"ok": True, "event": event.pk, "status": event.status})


def _dict(value):
    return value if isinstance(value, dict) else {}


def _text(value):
    """A payload value as text for the clear columns and lookups (PostgreSQL text cannot hold NUL)."""
    return str(value or "").replace("\x00", "")


def _issue_links(site, issue_id, key):
    match = Q(jira_issue_id=issue_id) if issue_id else Q(pk__in=[])
    if key:
        match |= Q(jira_issue_id="", jira_issue_key=key)
    return Link.objects.filter(match, tenant=site.tenant)


def issue_deleted(site, data):
    """The issue is gone, and with it every worklog the connector logged on it."""
    issue = _dict(data.get("issue"))
    links = _issue_links(site, _text(issue.get("id")), _text(issue.get("key")))
    return links.exclude(state__in=GONE).update(state=Link.State.DELETED, updated_at=timezone.now())


def worklog_deleted(site, data):
    worklog_id = _text(_dict(data.get("worklog")).get("id"))
    if not worklog_id:
        return 0
    links = Link.objects.filter(tenant=site.tenant, purpose=Link.Purpose.WORKLOG, jira_worklog_id=worklog_id)
    return links.exclude(state__in=GONE).update(state=Link.State.DELETED, updated_at=timezone.now())


def issue_updated(site, data):
    """A moved or renamed issue: keep the stored key in step (changelog "Key" item, or the payload's key)."""
    issue = _dict(data.get("issue"))
    issue_id, key = _text(issue.get("id")), _text(issue.get("key"))
    items = _dict(data.get("changelog")).get("items")
    items = items if isinstance(items, list) else []
    old_keys = [
        _text(item.get("fromString"))
        for item in items
        if isinstance(item, dict) and str(item.get("field", "")).lower() == "key" and item.get("fromString")
    ]
    if not key or len(key) > 32:
        return 0
    match = Q(jira_issue_id=issue_id) if issue_id else Q(pk__in=[])
    if old_keys:
        match |= Q(jira_issue_id="", jira_issue_key__in=old_keys)
    links = Link.objects.filter(match, tenant=site.tenant).exclude(jira_issue_key=key)
    return links.update(jira_issue_key=key, updated_at=timezone.now())


HANDLERS = {
    "jira:issue_deleted": issue_deleted,
    "jira:issue_updated": issue_updated,
    "worklog_deleted": worklog_deleted,
}
