"""POST /webhooks/freshbooks/: signed FreshBooks deliveries in, audit events out, processing enqueued.

The request does no call to FreshBooks or Jira: it checks the delivery, stores an encrypted
audit.Event in one short transaction and enqueues `connector.tasks.process_event` with it.

Answers (errors as ``{"error": ...}``, connector.endpoints.base): 200 stored (or duplicate of an event still
queued/processing, stored but not enqueued; or a replay: the same signed delivery received within
WEBHOOK_REPLAY_WINDOW and still open, acknowledged and neither stored nor processed again; once that one has run,
the same delivery is a repeat, stored and processed: connector.repeats); 400 malformed form, missing,
over-long or non-numeric fields, or an event no kind declares (connector.kinds); 401 missing or wrong
signature, or unknown account (the same answer: an unsigned caller cannot tell them apart; counted on a known
account at most once a second); 403 the tenant is inactive; 404 unknown callback (handshake: also for an
unknown account or an inactive tenant); 405 not POST; 413 body over WEBHOOK_MAX_BODY; 415 not form-encoded.
"""

import functools
import hashlib
import logging
import re
from datetime import timedelta

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, transaction
from django.db.models import Case, F, Q, When
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.tasks import async_task

from audit import metrics
from audit.models import Event
from connector import kinds, repeats
from connector.endpoints.base import InboundEndpoint, Refused
from connector.freshbooks import callbacks
from connector.freshbooks import signature as fb_signature
from tenants.models import FreshBooksAccount, FreshBooksWebhook

log = logging.getLogger(__name__)

PROCESS_TASK = "connector.tasks.process_event"
REQUIRED = ("name", "object_id", "account_id")
MAX_LENGTH = 64  # of the fields stored in clear (Event.name, object_id, account_id, business_id)
MAX_FIELD_LENGTH = 1024  # of any other field (FreshBooks sends short ids, names and a verifier)
MAX_VERIFIER_LENGTH = 256
FRESHBOOKS_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits only: str.isdigit() also accepts "²"
MAX_REJECTED = 2**31 - 1  # the counter saturates instead of overflowing the column
BAD_SIGNATURE = "Missing or invalid X-FreshBooks-Hmac-SHA256 signature."
FORM = "application/x-www-form-urlencoded"
CHARSETS = ("utf-8", "utf8", "us-ascii", "ascii")


def _lock_key(*parts):
    """A signed 64-bit key for pg_advisory_xact_lock."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class FreshBooksWebhookView(InboundEndpoint):
    sender = "FreshBooks"
    content_type = FORM

    def accepts(self, request):
        charset = request.content_params.get("charset", "utf-8").lower()
        return request.content_type == FORM and charset in CHARSETS

    def parse(self, request, body, **kwargs):
        """The form's fields in body order (FreshBooks signs them in that order) and the signature header."""
        try:
            fields = fb_signature.parse_form(body)
        except fb_signature.MalformedForm as exc:
            raise Refused(400, f"Malformed form body: {exc}") from None
        missing = [name for name in REQUIRED if not fields.get(name)]
        if missing:
            raise Refused(400, f"Missing fields: {', '.join(missing)}.")
        clear = (*REQUIRED, "business_id")
        too_long = [k for k in clear if len(fields.get(k, "")) > MAX_LENGTH]
        too_long += [k for k, v in fields.items() if k not in clear and len(v) > MAX_FIELD_LENGTH]
        if too_long:
            raise Refused(400, f"Fields too long: {', '.join(too_long[:10])}.")
        if not FRESHBOOKS_ID.fullmatch(fields["object_id"]):
            raise Refused(400, "object_id must be a FreshBooks id (ASCII digits).")
        if fields["name"] != "callback.verify" and kinds.kind_for(fields["name"]) is None:
            raise Refused(
                400, f"Unknown event {fields['name']}: no FreshBooks kind of the connector declares it."
            )
        return fields, request.headers.get(fb_signature.HEADER, "")

    def verify(self, request, delivery):
        """The account's verified callback for the event (or its parent event) must have signed it.

        `callback.verify` is the handshake instead: answered here, nothing stored as an event."""
        fields, given_signature = delivery
        if fields["name"] == "callback.verify":
            return self.handshake(fields)
        name, account_id = fields["name"], fields["account_id"]
        business_id = fields.get("business_id", "")
        # The event's own callback or its parent's ("invoice" for "invoice.create").
        hooks = _verified_callbacks(account_id, business_id, (name, name.split(".", 1)[0]))
        accounts = {hook[1] for hook in hooks}
        signed = {
            pk
            for pk in accounts
            if fb_signature.verify(fields, given_signature, [h[0] for h in hooks if h[1] == pk])
        }
        if not signed:  # unknown account, no verified callback or a bad signature: one answer for all...
            pending = _unverified_signer(account_id, business_id, name, fields, given_signature)
            if (
                pending is not None
            ):  # ...except to whoever knows the verifier (FreshBooks): say what is missing
                raise Refused(
                    409,
                    f"Correctly signed, but callback #{pending.callback_id} ({pending.event}) is not verified yet: "
                    "it is confirmed after FreshBooks' callback.verify delivery (use Resend verification on it "
                    "in the admin if it stays unverified). The delivery was not stored.",
                )
            if accounts:
                _count_rejected(accounts)
            raise Refused(401, BAD_SIGNATURE)
        if len(signed) > 1:
            raise Refused(400, "Several accounts match this account_id: business_id is required.")
        account_pk = signed.pop()
        _, _, account_business_id, tenant_pk, tenant_active = next(h for h in hooks if h[1] == account_pk)
        if not tenant_active:
            raise Refused(403, "This tenant is inactive.")
        self.tenant_pk, self.account_business_id = tenant_pk, account_business_id
        self.body_hash = hashlib.sha256(f"{account_pk}\n{fb_signature.message(fields)}".encode()).hexdigest()
        return None

    def deduplicate(self, delivery):
        """An event still open for the same object (holding its lock), and any replay of this very delivery."""
        fields, _ = delivery
        original, self.replay_of = _earlier_events(
            self.tenant_pk, fields["name"], fields["object_id"], self.body_hash
        )
        return original

    def store(self, delivery, original):
        fields, _ = delivery
        if self.replay_of:  # the same signed delivery again: acknowledged, no new event, no new work
            return {"status": "replay", "event": self.replay_of}
        event = Event.objects.create(
            source=Event.Source.FRESHBOOKS,
            tenant_id=self.tenant_pk,
            name=fields["name"],
            object_id=fields["object_id"],
            account_id=fields["account_id"],
            business_id=fields.get("business_id", "") or self.account_business_id,
            payload=fields,
            body_hash=self.body_hash,
            status=Event.Status.DUPLICATE if original else Event.Status.QUEUED,
            duplicate_of_id=original,
        )
        if original:
            metrics.event_finished(event)
            return {"status": "duplicate", "event": event.pk, "duplicate_of": original}
        _enqueue_on_commit(PROCESS_TASK, event.pk)
        return {"status": "queued", "event": event.pk}

    def handshake(self, fields):
        """name=callback.verify: keep the verifier (encrypted) and confirm it with FreshBooks after commit."""
        verifier, callback_id = fields.get("verifier", ""), fields["object_id"]
        if not verifier:
            raise Refused(400, "Missing fields: verifier.")
        if len(verifier) > MAX_VERIFIER_LENGTH:
            raise Refused(400, "Fields too long: verifier.")
        accounts = self._accounts(fields["account_id"], fields.get("business_id", ""))
        with transaction.atomic():
            hook = (
                FreshBooksWebhook.objects.select_for_update()
                .select_related("account__tenant")
                .filter(account__in=accounts, callback_id=int(callback_id), account__tenant__active=True)
                .first()
            )
            if hook is None:  # unknown account, unknown callback or inactive tenant: one answer
                raise Refused(404, "Unknown callback: run register_webhooks, then resend verification.")
            stored = callbacks.store_verifier(hook, verifier)
            if stored:
                _enqueue_on_commit(callbacks.CONFIRM_TASK, hook.pk)
        status = "verifying" if stored else ("already verified" if hook.verified else "verification pending")
        return {"status": status, "callback": hook.callback_id}

    @staticmethod
    def _accounts(account_id, business_id):
        found = FreshBooksAccount.objects.select_related("tenant").filter(account_id=account_id)
        if business_id:
            found = found.filter(business_id=business_id)
        return list(found[:2])


def _count_rejected(account_pks):
    """Count a refused delivery on the account: at most once a second (an unsigned flood is one write a
    second, not one per post), saturating at MAX_REJECTED."""
    now = timezone.now()
    FreshBooksAccount.objects.filter(pk__in=account_pks).filter(
        Q(last_rejected_at__isnull=True) | Q(last_rejected_at__lte=now - timedelta(seconds=1))
    ).update(
        rejected_deliveries=Case(
            When(rejected_deliveries__lt=MAX_REJECTED, then=F("rejected_deliveries") + 1),
            default=MAX_REJECTED,
        ),
        last_rejected_at=now,
    )


def _enqueue(func, pk):
    """Hand the task to the broker; the event stays queued (and visible) if the broker is down."""
    try:
        async_task(func, pk, broker=_broker())
    except Exception:
        log.exception("Could not enqueue %s(%s); it stays queued for replay", func, pk)


def _enqueue_on_commit(func, pk):
    """Enqueue `func(pk)` so that a worker only sees it once the current transaction has committed.

    With django-q's ORM broker on this database the task row is inserted in the same transaction:
    the event and its task commit together or not at all (one commit per delivery instead of two,
    and no window where the event is committed but its task lost; a database error rolls both back
    and the sender gets an error and retries). With any other broker (Redis) it is pushed after commit.
    """
    broker = _broker()
    if isinstance(broker, ORM) and Conf.ORM == DEFAULT_DB_ALIAS:
        try:
            async_task(func, pk, broker=broker)
        except DatabaseError:
            raise
        except Exception:
            log.exception("Could not enqueue %s(%s); it stays queued for replay", func, pk)
    else:
        transaction.on_commit(lambda: _enqueue(func, pk))


@functools.cache
def _broker():
    """One django-q broker per process (get_broker() builds a new one, and a Redis connection, each call)."""
    return get_broker()


def _unverified_signer(account_id, business_id, name, fields, given_signature):
    """The account's not-yet-verified callback for `name` (or its parent) whose verifier signs `fields`
    (the cold path of a refused delivery: only FreshBooks, which knows the verifier, is told more)."""
    hooks = FreshBooksWebhook.objects.filter(
        account__account_id=account_id, verified=False, event__in=(name, name.split(".", 1)[0])
    )
    if business_id:
        hooks = hooks.filter(account__business_id=business_id)
    return next((h for h in hooks if fb_signature.verify(fields, given_signature, [h.verifier])), None)


def _verified_callbacks(account_id, business_id, events):
    """[(verifier, account pk, account business_id, tenant pk, tenant active)] of the verified callbacks
    for `events` of the account: the hot path, so one plain query (the ORM's query building costs more
    than the query itself) and the verifier decrypted by its field."""
    sql = _CALLBACKS_SQL + (" AND a.business_id = %s" if business_id else "")
    params = [account_id, *events] + ([business_id] if business_id else [])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    field = FreshBooksWebhook._meta.get_field("verifier")
    return [(field.from_db_value(row[0], None, connection), *row[1:]) for row in rows]


_CALLBACKS_SQL = (
    "SELECT w.verifier, a.id, a.business_id, t.id, t.active"
    " FROM tenants_freshbookswebhook w"
    " JOIN tenants_freshbooksaccount a ON a.id = w.account_id"
    " JOIN tenants_tenant t ON t.id = a.tenant_id"
    " WHERE a.account_id = %s AND w.verified AND w.event IN (%s, %s)"
)


def _earlier_events(tenant_pk, name, object_id, body_hash):
    """(id of an event for the same object still queued or processing, id of the event this very signed
    delivery replays: connector.repeats.replay_of), each None when there is none: one round trip.

    On PostgreSQL a transaction-scoped advisory lock on (tenant, name, object id) makes a concurrent
    delivery for the same object wait until this transaction commits, so it sees this event and is recorded
    as its duplicate, or as its replay (SQLite serialises write transactions anyway).
    """
    since = timezone.now() - timedelta(seconds=settings.WEBHOOK_REPLAY_WINDOW)
    since = connection.ops.adapt_datetimefield_value(since)  # as the column stores it (raw SQL)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_key(str(tenant_pk), name, object_id)])
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
