"""POST /webhooks/freshbooks/: signed FreshBooks deliveries in, audit events out, processing enqueued.

A DRF view (connector.endpoints.base): `FreshBooksFormParser` keeps the form fields in body order with the raw
body, `FreshBooksSignature` identifies the account and tenant that signed it (connector.endpoints.authentication).
The request does no call to FreshBooks or Jira: it stores an encrypted audit.Event in one short transaction and
enqueues `connector.tasks.process_event` with it.

Answers (errors as ``{"error": ...}``, connector.endpoints.base): 200 stored (or duplicate of an event still
queued/processing, stored but not enqueued; or a replay: the same signed delivery received within
WEBHOOK_REPLAY_WINDOW and still open, acknowledged and neither stored nor processed again; once that one has run,
the same delivery is a repeat, stored and processed: connector.repeats); 400 malformed form, missing,
over-long or non-numeric fields, or an event no kind declares (connector.kinds); 401 missing or wrong
signature, or unknown account (the same answer: an unsigned caller cannot tell them apart; counted on a known
account at most once a second); 403 the tenant is inactive; 404 unknown callback (handshake: also for an
unknown account or an inactive tenant); 405 not POST; 408 the body stalled; 409 signed by a callback not
verified yet; 413 body over WEBHOOK_MAX_BODY; 415 not form-encoded.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit import metrics
from audit.models import Event
from config.queueing import enqueue
from connector import repeats
from connector.endpoints import store
from connector.endpoints.authentication import UNKNOWN_CALLBACK, CallbackHandshake, FreshBooksSignature
from connector.endpoints.base import Delivery, Refused, WebhookView
from connector.endpoints.parsers import FORM, FreshBooksFormParser, form_body
from connector.freshbooks import registration
from connector.schedules import CONFIRM_VERIFICATION, PROCESS_EVENT
from tenants.models import FreshBooksWebhook

log = logging.getLogger(__name__)

CHARSETS = ("utf-8", "utf8", "us-ascii", "ascii")


class FreshBooksWebhookView(WebhookView):
    sender = "FreshBooks"
    content_type = FORM
    parser_classes = [FreshBooksFormParser]
    authentication_classes = [FreshBooksSignature]

    def accepts(self, request):
        charset = request.content_params.get("charset", "utf-8").lower()
        return super().accepts(request) and charset in CHARSETS

    def parse(self, request):
        return Delivery(payload=form_body(request).fields, sender=request.auth)

    def answer_early(self, delivery):
        if isinstance(delivery.sender, CallbackHandshake):
            return self.handshake(delivery.sender)
        return None

    def save(self, delivery):
        if connection.vendor != "postgresql":
            return super().save(delivery)
        since = timezone.now() - timedelta(seconds=settings.WEBHOOK_REPLAY_WINDOW)
        event = self.event(delivery)
        stored, delivery.original, delivery.replay_of = store.store_event(event, since)
        if not stored:
            return {"status": "replay", "event": delivery.replay_of}
        return self.answer(event, delivery.original)

    def deduplicate(self, delivery):
        """An event still open for the same object (holding its lock), and any replay of this very delivery."""
        fields, sender = delivery.payload, delivery.sender
        delivery.original, delivery.replay_of = _earlier_events(
            sender.tenant_pk, fields["name"], fields["object_id"], sender.body_hash
        )

    def store(self, delivery):
        if delivery.replay_of:  # the same signed delivery again: acknowledged, no new event, no new work
            return {"status": "replay", "event": delivery.replay_of}
        event = self.event(delivery)
        if delivery.original:
            event.status, event.duplicate_of_id = Event.Status.DUPLICATE, delivery.original
        event.save()
        if not delivery.original:
            enqueue(PROCESS_EVENT, event.pk, on_commit=True)
        return self.answer(event, delivery.original)

    @staticmethod
    def event(delivery):
        """The audit.Event of a delivery, not saved yet (queued)."""
        fields, sender = delivery.payload, delivery.sender
        return Event(
            source=Event.Source.FRESHBOOKS,
            tenant_id=sender.tenant_pk,
            name=fields["name"],
            object_id=fields["object_id"],
            account_id=fields["account_id"],
            business_id=fields.get("business_id", "") or sender.business_id,
            payload=fields,
            body_hash=sender.body_hash,
            status=Event.Status.QUEUED,
        )

    @staticmethod
    def answer(event, original):
        if original:
            metrics.event_finished(event)
            return {"status": "duplicate", "event": event.pk, "duplicate_of": original}
        return {"status": "queued", "event": event.pk}

    @staticmethod
    def handshake(handshake):
        """name=callback.verify: keep the verifier (encrypted) and confirm it with FreshBooks after commit."""
        with transaction.atomic():
            hook = (
                FreshBooksWebhook.objects.select_for_update()
                .filter(pk=handshake.hook_pk, account__tenant__active=True)
                .first()
            )
            if hook is None:  # deleted or deactivated since it was identified: the same answer
                raise Refused(404, UNKNOWN_CALLBACK)
            stored = registration.store_verifier(hook, handshake.verifier)
            if stored:
                enqueue(CONFIRM_VERIFICATION, hook.pk, on_commit=True)
        status = "verifying" if stored else ("already verified" if hook.verified else "verification pending")
        return {"status": status, "callback": hook.callback_id}


def _earlier_events(tenant_pk, name, object_id, body_hash):
    """(id of an event for the same object still queued or processing, id of the event this very signed
    delivery replays: connector.repeats.replay_of), each None when there is none: one round trip.

    SQLite (make run's database) serialises write transactions, so a concurrent delivery for the same object
    sees this event; on PostgreSQL the view takes connector.endpoints.store's path, with an advisory lock.
    """
    since = timezone.now() - timedelta(seconds=settings.WEBHOOK_REPLAY_WINDOW)
    since = connection.ops.adapt_datetimefield_value(since)  # as the column stores it (raw SQL)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT id FROM audit_event WHERE tenant_id = %s AND name = %s AND object_id = %s"
            " AND status IN (%s, %s) ORDER BY id LIMIT 1),"
            " (SELECT id FROM audit_event WHERE body_hash = %s AND received_at >= %s ORDER BY id DESC LIMIT 1),"
            " (SELECT status FROM audit_event WHERE body_hash = %s AND received_at >= %s ORDER BY id DESC LIMIT 1)",
            [
                tenant_pk,
                name,
                object_id,
                Event.Status.QUEUED,
                Event.Status.PROCESSING,
                *(body_hash, since) * 2,
            ],
        )
        open_id, newest_id, newest_status = cursor.fetchone()
    return open_id, repeats.replay_of(open_id, newest_id, newest_status)


freshbooks_webhook = FreshBooksWebhookView.as_view()
