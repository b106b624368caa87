"""POST /webhooks/freshbooks/: signed FreshBooks deliveries in, audit events out, processing enqueued.

The request does no call to FreshBooks or Jira: it checks the delivery, stores an encrypted
audit.Event in one short transaction and enqueues `connector.tasks.process_event` with it.

Answers (errors as ``{"error": ...}``, connector.endpoints.base): 200 stored (or duplicate of an event still
queued/processing, stored but not enqueued); 400 malformed form, missing fields or an event no kind declares
(connector.kinds); 401 missing or wrong signature (counted on the account); 403 the tenant is inactive;
404 unknown account or callback; 405 not POST; 413 body over WEBHOOK_MAX_BODY; 415 not form-encoded.
"""

import functools
import hashlib
import logging

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.tasks import async_task

from audit.models import Event
from connector import kinds
from connector.endpoints.base import InboundEndpoint, Refused
from connector.freshbooks import callbacks
from connector.freshbooks import signature as fb_signature
from tenants.models import FreshBooksAccount, FreshBooksWebhook

log = logging.getLogger(__name__)

PROCESS_TASK = "connector.tasks.process_event"
REQUIRED = ("name", "object_id", "account_id")
MAX_LENGTH = 64  # of the fields stored in clear (Event.name, object_id, account_id, business_id)
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
        too_long = [k for k in (*REQUIRED, "business_id") if len(fields.get(k, "")) > MAX_LENGTH]
        if too_long:
            raise Refused(400, f"Fields too long: {', '.join(too_long)}.")
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
        if not accounts:  # no usable callback: is the account unknown (404) or the delivery unsigned (401)?
            found = FreshBooksAccount.objects.filter(account_id=account_id)
            if business_id:
                found = found.filter(business_id=business_id)
            accounts = set(found.values_list("pk", flat=True)[:2])
            if not accounts:
                raise Refused(404, "Unknown FreshBooks account.")
        if len(accounts) > 1:
            raise Refused(400, "Several accounts match this account_id: business_id is required.")
        account_pk = accounts.pop()
        if not fb_signature.verify(fields, given_signature, [hook[0] for hook in hooks]):
            FreshBooksAccount.objects.filter(pk=account_pk).update(
                rejected_deliveries=F("rejected_deliveries") + 1, last_rejected_at=timezone.now()
            )
            raise Refused(401, "Missing or invalid X-FreshBooks-Hmac-SHA256 signature.")
        _, _, account_business_id, tenant_pk, tenant_active = hooks[0]
        if not tenant_active:
            raise Refused(403, "This tenant is inactive.")
        self.tenant_pk, self.account_business_id = tenant_pk, account_business_id
        return None

    def deduplicate(self, delivery):
        fields, _ = delivery
        return _open_event(self.tenant_pk, fields["name"], fields["object_id"])

    def store(self, delivery, original):
        fields, _ = delivery
        event = Event.objects.create(
            source=Event.Source.FRESHBOOKS,
            tenant_id=self.tenant_pk,
            name=fields["name"],
            object_id=fields["object_id"],
            account_id=fields["account_id"],
            business_id=fields.get("business_id", "") or self.account_business_id,
            payload=fields,
            status=Event.Status.DUPLICATE if original else Event.Status.QUEUED,
            duplicate_of_id=original,
        )
        if original:
            return {"status": "duplicate", "event": event.pk, "duplicate_of": original}
        _enqueue_on_commit(PROCESS_TASK, event.pk)
        return {"status": "queued", "event": event.pk}

    def handshake(self, fields):
        """name=callback.verify: keep the verifier (encrypted) and confirm it with FreshBooks after commit."""
        verifier, callback_id = fields.get("verifier", ""), fields["object_id"]
        if not verifier:
            raise Refused(400, "Missing fields: verifier.")
        if not callback_id.isdigit() or len(callback_id) > 18:
            raise Refused(400, "object_id must be a callback id.")
        accounts = self._accounts(fields["account_id"], fields.get("business_id", ""))
        if not accounts:
            raise Refused(404, "Unknown FreshBooks account.")
        with transaction.atomic():
            hook = (
                FreshBooksWebhook.objects.select_for_update()
                .select_related("account__tenant")
                .filter(account__in=accounts, callback_id=int(callback_id))
                .first()
            )
            if hook is None:
                raise Refused(404, "Unknown callback: run register_webhooks, then resend verification.")
            if not hook.account.tenant.active:
                raise Refused(403, "This tenant is inactive.")
            if callbacks.store_verifier(hook, verifier):
                _enqueue_on_commit(callbacks.CONFIRM_TASK, hook.pk)
                return {"status": "verifying", "callback": hook.callback_id}
        return {"status": "already verified", "callback": hook.callback_id}

    @staticmethod
    def _accounts(account_id, business_id):
        found = FreshBooksAccount.objects.select_related("tenant").filter(account_id=account_id)
        if business_id:
            found = found.filter(business_id=business_id)
        return list(found[:2])


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


def _open_event(tenant_pk, name, object_id):
    """The id of an event for the same object still queued or processing, else None.

    On PostgreSQL a transaction-scoped advisory lock on (tenant, name, object id) makes a concurrent
    identical delivery wait until this transaction commits, so it sees this event and is recorded as
    its duplicate (SQLite serialises write transactions anyway).
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_key(str(tenant_pk), name, object_id)])
        cursor.execute(
            "SELECT id FROM audit_event WHERE tenant_id = %s AND name = %s AND object_id = %s"
            " AND status IN (%s, %s) ORDER BY id LIMIT 1",
            [tenant_pk, name, object_id, Event.Status.QUEUED, Event.Status.PROCESSING],
        )
        row = cursor.fetchone()
    return row[0] if row else None


freshbooks_webhook = FreshBooksWebhookView.as_view()
