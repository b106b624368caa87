"""Jira webhook endpoints: verify, deduplicate, record as an audit Event and keep the ledger true.

``POST /webhooks/jira/`` receives dynamic (OAuth app) webhooks: a JWT in ``Authorization`` signed with the
OAuth client secret; the site is found by ``matchedWebhookIds``. ``POST /webhooks/jira/<site uuid>/``
receives the admin webhook of an API-token site, signed with ``X-Hub-Signature`` (connector.jira.inbound).

The work is a tiny ledger update (connector.jira.inbound.EVENT_HANDLERS), so it happens inline in the
storing transaction instead of being enqueued. A repeated ``X-Atlassian-Webhook-Identifier`` is
acknowledged and not acted on again; an older delivery never undoes a newer one, and a dynamic delivery is
checked with Jira before it changes a link (503 when Jira cannot be asked, so that Jira sends it again;
see connector.jira.inbound). An unknown site answers like a bad signature (401). Errors answer
``{"error": ...}`` (connector.endpoints.base).
"""

import json
import logging

import jwt
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import metrics
from audit.models import Event
from connector.endpoints.base import InboundEndpoint, Refused
from connector.jira import inbound
from tenants.models import JiraSite

log = logging.getLogger(__name__)

IDENTIFIER = "HTTP_X_ATLASSIAN_WEBHOOK_IDENTIFIER"


def _json(body):
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        data = None
    if not (isinstance(data, dict) and isinstance(data.get("webhookEvent"), str)):
        raise Refused(400, "Body is not a Jira webhook.")
    return data


class JiraEndpoint(InboundEndpoint):
    """Shared steps of both Jira endpoints: `parse` returns the webhook's JSON, `verify` sets `self.site`."""

    sender = "Jira"
    # Jira embeds the whole issue (description, comments, worklogs) and documents payloads up to 25 MB.
    max_body_setting = "JIRA_WEBHOOK_MAX_BODY"
    confirm = False  # ask Jira before a delivery changes a link (its authentication does not cover the body)

    def deduplicate(self, delivery):
        """Nothing to look up: the unique delivery id makes a repeat fail to store (see `store`)."""
        return None

    def store(self, data, original):
        site = self.site
        if not site.tenant.active:
            raise Refused(403, "Tenant is inactive.")
        identifier = inbound.text(self.request.META.get(IDENTIFIER)).strip()
        # The identifier is unique within a site: scope it by site so two sites never collide.
        delivery_id = f"{site.uuid}:{identifier}" if identifier else ""
        if len(delivery_id) > Event._meta.get_field("delivery_id").max_length:
            raise Refused(400, "Delivery identifier too long.")
        name = inbound.text(data["webhookEvent"])[:64]
        if not inbound.acts_on(name):  # acknowledged; nothing of it is stored
            return {"ok": True, "status": "ignored"}
        issue, worklog = inbound.as_dict(data.get("issue")), inbound.as_dict(data.get("worklog"))
        object_id = inbound.text(worklog.get("id") or issue.get("id"))[:64]
        try:
            with transaction.atomic():
                event = Event.objects.create(
                    tenant=site.tenant, source=Event.Source.JIRA, name=name, object_id=object_id,
                    delivery_id=delivery_id, payload=inbound.kept(data), jira_key=inbound.text(issue.get("key"))[:32],
                    status=Event.Status.PROCESSING, started_at=timezone.now(), attempts=1,
                )  # fmt: skip
        except IntegrityError:
            log.info("Jira delivery %s for %s already received", identifier, site)
            return {"ok": True, "duplicate": True}
        handler = inbound.EVENT_HANDLERS.get(name)
        try:
            changed = handler(site, data, inbound.timestamp(data), self.confirm) if handler else 0
        except inbound.Unconfirmed as exc:  # the transaction is rolled back: nothing stored
            log.warning("Jira delivery %s for %s not confirmed with Jira: %s", identifier, site, exc)
            raise Refused(503, "Could not check the delivery with Jira; try again later.") from None
        event.status = Event.Status.SUCCEEDED if changed else Event.Status.SKIPPED
        event.status_detail = (
            f"{changed} link(s) updated."
            if changed
            else ("No link of the connector is affected." if handler else f"{name} is not used.")
        )
        event.finished_at = timezone.now()
        event.save(update_fields=["status", "status_detail", "finished_at"])
        metrics.event_finished(event)
        return {"ok": True, "event": event.pk, "status": event.status}


class DynamicWebhookView(JiraEndpoint):
    """OAuth sites: the JWT is checked before the body is trusted; the site comes from matchedWebhookIds."""

    confirm = True

    def parse(self, request, body, **kwargs):
        try:
            inbound.verify_jwt(request.META.get("HTTP_AUTHORIZATION"))
        except jwt.InvalidTokenError as exc:
            log.warning("Jira webhook refused: %s", exc)
            raise Refused(401, "Invalid or expired token.") from None
        return _json(body)

    def verify(self, request, data):
        self.site = inbound.site_for_webhook_ids(data.get("matchedWebhookIds"), data)
        if self.site is None:
            raise Refused(404, "No site registered these webhooks.")


class AdminWebhookView(JiraEndpoint):
    """API-token sites: the site is in the URL; X-Hub-Signature is checked before the body is parsed."""

    def parse(self, request, body, site_uuid=None):
        site = JiraSite.objects.filter(uuid=site_uuid).select_related("tenant").first()
        signature = request.META.get("HTTP_X_HUB_SIGNATURE")
        # An unknown site answers like a bad signature: an unsigned caller learns nothing about which exist.
        if not inbound.verify_hub_signature(site.webhook_secret if site else "", body, signature):
            log.warning("Jira webhook for %s refused: bad or missing X-Hub-Signature", site)
            raise Refused(401, "Bad signature.")
        self.site = site
        return _json(body)

    def verify(self, request, data):
        """Done in `parse`: the signature covers the raw body, checked before it is decoded."""


dynamic_webhook = DynamicWebhookView.as_view()
admin_webhook = AdminWebhookView.as_view()
