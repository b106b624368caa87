"""Jira webhook endpoints: verify, deduplicate, record as an audit Event and keep the ledger true.

``POST /webhooks/jira/`` receives dynamic (OAuth app) webhooks: a JWT in ``Authorization`` signed with the
OAuth client secret; the site is found by ``matchedWebhookIds``. ``POST /webhooks/jira/<site uuid>/``
receives the admin webhook of an API-token site, signed with ``X-Hub-Signature`` (connector.jira.inbound).

The work is a tiny ledger update (connector.jira.inbound.EVENT_HANDLERS), so it happens inline in the
storing transaction instead of being enqueued. A repeated ``X-Atlassian-Webhook-Identifier`` is
acknowledged and not acted on again; an older delivery never undoes a newer one, and a dynamic delivery is
checked with Jira before it changes a link (503 when Jira cannot be asked, so that Jira sends it again;
see connector.jira.inbound). An unknown site answers like a bad signature (401). Errors answer
``{"error": ...}`` (connector.endpoints.base). DRF views: `JiraBodyParser` reads the body, `JiraWebhookJWT` and
`JiraHubSignature` (connector.endpoints.authentication) identify the site before a large body is read.
"""

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import metrics
from audit.models import Event
from connector.endpoints.authentication import JiraHubSignature, JiraWebhookJWT
from connector.endpoints.base import Delivery, Refused, WebhookView
from connector.endpoints.parsers import JiraBodyParser, jira_body
from connector.jira import inbound

log = logging.getLogger(__name__)

IDENTIFIER = "HTTP_X_ATLASSIAN_WEBHOOK_IDENTIFIER"
RETRY_AFTER = 30  # seconds a 503 asks Jira to wait when Jira itself gave no Retry-After


class JiraEndpoint(WebhookView):
    """Shared steps of both Jira endpoints: the delivery's payload is the webhook's JSON, its sender the site."""

    sender = "Jira"
    # Jira embeds the whole issue (description, comments, worklogs) and documents payloads up to 25 MB; the
    # authentication class lets that much be read only once the headers name a known sender.
    max_body_setting = "JIRA_WEBHOOK_MAX_BODY"
    parser_classes = [JiraBodyParser]

    def parse(self, request):
        identifier = inbound.text(request.META.get(IDENTIFIER)).strip()
        site = request.auth
        # The identifier is unique within a site: scope it by site so two sites never collide.
        delivery_id = f"{site.uuid}:{identifier}" if identifier else ""
        payload = jira_body(request).json()
        return Delivery(payload=payload, sender=site, delivery_id=delivery_id)

    def store(self, delivery):
        """Nothing to deduplicate beforehand: the unique delivery id makes a repeat fail to store."""
        site, data, delivery_id = delivery.sender, delivery.payload, delivery.delivery_id
        if not site.tenant.active:
            raise Refused(403, "Tenant is inactive.")
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
                    tenant=site.tenant,
                    source=Event.Source.JIRA,
                    name=name,
                    object_id=object_id,
                    delivery_id=delivery_id,
                    payload=inbound.kept(data),
                    jira_key=inbound.text(issue.get("key"))[:32],
                    status=Event.Status.PROCESSING,
                    started_at=timezone.now(),
                    attempts=1,
                )
        except IntegrityError:
            log.info("Jira delivery %s for %s already received", delivery_id, site)
            return {"ok": True, "duplicate": True}
        handler = inbound.EVENT_HANDLERS.get(name)
        try:
            changed = handler(site, data, inbound.timestamp(data), delivery.confirmation) if handler else 0
        except inbound.Unconfirmed as exc:  # the transaction is rolled back: nothing stored
            raise inbound_unavailable(delivery, exc) from None
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
    """OAuth sites: the JWT is checked before the body is read; the site comes from matchedWebhookIds."""

    authentication_classes = [JiraWebhookJWT]

    def answer_early(self, delivery):
        """Ask Jira before the storing transaction (inbound.confirmation: one try); 503 with Retry-After when
        it cannot be asked, so that Jira sends the delivery again."""
        try:
            delivery.confirmation = inbound.confirmation(delivery.sender, delivery.payload)
        except inbound.Unconfirmed as exc:
            raise inbound_unavailable(delivery, exc) from None
        return None


def inbound_unavailable(delivery, exc):
    """Refused 503 with Retry-After (Jira's own wait when it gave one, else RETRY_AFTER seconds)."""
    log.warning("Jira delivery %s not confirmed with Jira: %s", delivery.delivery_id, exc)
    refused = Refused(503, "Could not check the delivery with Jira; try again later.")
    refused.wait = max(RETRY_AFTER, int(exc.retry_after or 0))
    return refused


class AdminWebhookView(JiraEndpoint):
    """API-token sites: the site is in the URL; X-Hub-Signature is checked over the raw body before it is
    decoded, and an unknown site or a missing signature is refused before the body is read."""

    authentication_classes = [JiraHubSignature]


dynamic_webhook = DynamicWebhookView.as_view()
admin_webhook = AdminWebhookView.as_view()
