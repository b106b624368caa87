"""Who sent a webhook delivery: one DRF authentication class per sender. Each identifies the sender and its
tenant as ``request.auth`` (``request.user`` stays None: no person signs a webhook) or refuses.

- `FreshBooksSignature`: ``X-FreshBooks-Hmac-SHA256``, base64 HMAC-SHA256 of ``json.dumps`` of the form fields in
  body order, keyed with the verifier of the account's verified callback for the event or its parent event
  (connector.freshbooks.signature); the verified callbacks are cached per process for
  WEBHOOK_VERIFIER_CACHE seconds (see `_cache`). ``request.auth`` is a `FreshBooksSender`; a ``name=callback.verify`` delivery
  is the handshake instead (unsigned: it carries the verifier), ``request.auth`` its `CallbackHandshake`.
- `JiraWebhookJWT`: dynamic webhooks of OAuth sites carry a JWT signed with the OAuth client secret
  (connector.jira.inbound.verify_jwt), checked from the headers *before* the body is read; the site is then
  the one that registered ``matchedWebhookIds``. ``request.auth`` is the JiraSite.
- `JiraHubSignature`: admin webhooks of API-token sites, ``X-Hub-Signature: sha256=<hex HMAC of the raw body>``
  with the secret of the site named in the URL. An unknown site or a missing header is refused before the
  body is read; ``request.auth`` is the JiraSite.

Refusals: 401 for a missing or wrong signature or token, and for an unknown FreshBooks account or Jira site
(the same answer: an unsigned caller cannot tell them apart), with WWW-Authenticate; 400 when the body is not a
delivery (the parsers); FreshBooks also 403 (inactive tenant), 409 (correctly signed by a callback that is not
verified yet: only FreshBooks, which knows the verifier, learns this), 404 (handshake for an unknown callback);
Jira dynamic 404 (no site registered these webhooks).
"""

import hashlib
import logging
import time
from dataclasses import dataclass

import jwt
from django.conf import settings
from django.db import connection
from django.db.models.signals import post_delete, post_save
from rest_framework.authentication import BaseAuthentication

from connector.endpoints.base import BadSignature, Refused
from connector.endpoints.parsers import form_body, jira_body
from connector.endpoints.throttling import RejectedDeliveryThrottle
from connector.freshbooks import signature as fb_signature
from connector.jira import inbound
from tenants.models import FreshBooksAccount, FreshBooksWebhook, JiraSite, Tenant

log = logging.getLogger(__name__)

BAD_SIGNATURE = "Missing or invalid X-FreshBooks-Hmac-SHA256 signature."
UNKNOWN_CALLBACK = "Unknown callback: run register_webhooks, then resend verification."
MAX_VERIFIER_LENGTH = 256
FRESHBOOKS_SIGNATURE = "HTTP_" + fb_signature.HEADER.upper().replace("-", "_")


@dataclass(frozen=True)
class FreshBooksSender:
    """A FreshBooks delivery signed by the verified callback of one account."""

    tenant_pk: int
    account_pk: int
    business_id: str  # the account's business id (a delivery may leave it out)
    body_hash: str  # sha256 hex of the account and the signed text: the same for a replay of this delivery


@dataclass(frozen=True)
class CallbackHandshake:
    """A ``callback.verify`` delivery for a known callback of an active tenant, carrying its verifier."""

    hook_pk: int
    verifier: str


class FreshBooksSignature(BaseAuthentication):
    def authenticate(self, request):
        fields = form_body(request).fields  # the parser: 400 unless the body is a FreshBooks delivery
        if fields["name"] == "callback.verify":
            return None, _handshake(fields)
        name, account_id = fields["name"], fields["account_id"]
        business_id = fields.get("business_id", "")
        given = request.META.get(FRESHBOOKS_SIGNATURE, "")
        # The event's own callback or its parent's ("invoice" for "invoice.create").
        events = (name, name.split(".", 1)[0])
        hooks, cached = _verified_callbacks(account_id, business_id, events)
        signed = _signers(fields, given, hooks)
        if not signed and cached:  # a verifier may have changed since it was cached: ask the database
            hooks, _ = _verified_callbacks(account_id, business_id, events, fresh=True)
            signed = _signers(fields, given, hooks)
        accounts = {hook[1] for hook in hooks}
        if not signed:  # unknown account, no verified callback or a bad signature: one answer for all...
            pending = _unverified_signer(account_id, business_id, name, fields, given)
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
                RejectedDeliveryThrottle(accounts).allow_request(
                    request, None
                )  # counted at most once a second
            raise BadSignature(BAD_SIGNATURE)
        if len(signed) > 1:
            raise Refused(400, "Several accounts match this account_id: business_id is required.")
        account_pk = signed.pop()
        _, _, account_business_id, tenant_pk, tenant_active = next(h for h in hooks if h[1] == account_pk)
        if not tenant_active:
            raise Refused(403, "This tenant is inactive.")
        body_hash = hashlib.sha256(f"{account_pk}\n{fb_signature.message(fields)}".encode()).hexdigest()
        return None, FreshBooksSender(tenant_pk, account_pk, account_business_id, body_hash)

    def authenticate_header(self, request):
        return f'HMAC-SHA256 header="{fb_signature.HEADER}"'


def _handshake(fields):
    """The callback a ``callback.verify`` delivery names (400 without a verifier, 404 for an unknown account or
    callback or an inactive tenant: one answer)."""
    verifier = fields.get("verifier", "")
    if not verifier:
        raise Refused(400, "Missing fields: verifier.")
    if len(verifier) > MAX_VERIFIER_LENGTH:
        raise Refused(400, "Fields too long: verifier.")
    hooks = FreshBooksWebhook.objects.filter(
        account__account_id=fields["account_id"],
        callback_id=int(fields["object_id"]),
        account__tenant__active=True,
    )
    if fields.get("business_id"):
        hooks = hooks.filter(account__business_id=fields["business_id"])
    hook_pk = hooks.values_list("pk", flat=True).first()
    if hook_pk is None:
        raise Refused(404, UNKNOWN_CALLBACK)
    return CallbackHandshake(hook_pk, verifier)


def _unverified_signer(account_id, business_id, name, fields, given_signature):
    """The account's not-yet-verified callback for `name` (or its parent) whose verifier signs `fields`
    (the cold path of a refused delivery: only FreshBooks, which knows the verifier, is told more)."""
    hooks = FreshBooksWebhook.objects.filter(
        account__account_id=account_id, verified=False, event__in=(name, name.split(".", 1)[0])
    )
    if business_id:
        hooks = hooks.filter(account__business_id=business_id)
    return next((h for h in hooks if fb_signature.verify(fields, given_signature, [h.verifier])), None)


def _signers(fields, given_signature, hooks):
    """The pks of the accounts among `hooks` whose verifier signs `fields` as `given_signature`."""
    accounts = {hook[1] for hook in hooks}
    return {
        pk
        for pk in accounts
        if fb_signature.verify(fields, given_signature, [h[0] for h in hooks if h[1] == pk])
    }


# The verified callbacks last read, per (account_id, business_id, events): {key: (expiry, rows)}, at most
# _CACHE_SIZE keys, only found ones. Kept WEBHOOK_VERIFIER_CACHE seconds; emptied in this process when a
# callback, account or tenant is saved or deleted; read again when no cached verifier signs a delivery.
_cache = {}
_CACHE_SIZE = 1024


def _verified_callbacks(account_id, business_id, events, fresh=False):
    """([(verifier, account pk, account business_id, tenant pk, tenant active)], cached) of the verified
    callbacks for `events` (the event name and its parent) of the account; `cached`: read from this
    process's cache (see _cache) rather than the database. The hot path: one plain query when not cached
    (the ORM's query building costs more than the query itself), the verifier decrypted by its field."""
    key, now = (account_id, business_id, events), time.monotonic()
    if not fresh and (hit := _cache.get(key)) and hit[0] > now:
        return hit[1], True
    sql = _CALLBACKS_SQL + (" AND a.business_id = %s" if business_id else "")
    params = [account_id, *events] + ([business_id] if business_id else [])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    field = FreshBooksWebhook._meta.get_field("verifier")
    rows = [(field.from_db_value(row[0], None, connection), *row[1:]) for row in rows]
    _cache.pop(key, None)
    if rows and settings.WEBHOOK_VERIFIER_CACHE > 0:
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()
        _cache[key] = (now + settings.WEBHOOK_VERIFIER_CACHE, rows)
    return rows, False


def forget_verifiers(**kwargs):
    """Empty this process's cache of verified callbacks (a callback, account or tenant changed)."""
    _cache.clear()


for _model in (FreshBooksWebhook, FreshBooksAccount, Tenant):
    for _signal in (post_save, post_delete):
        _signal.connect(forget_verifiers, sender=_model, dispatch_uid=f"forget_verifiers:{_model.__name__}")


_CALLBACKS_SQL = (
    "SELECT w.verifier, a.id, a.business_id, t.id, t.active"
    " FROM tenants_freshbookswebhook w"
    " JOIN tenants_freshbooksaccount a ON a.id = w.account_id"
    " JOIN tenants_tenant t ON t.id = a.tenant_id"
    " WHERE a.account_id = %s AND w.verified AND w.event IN (%s, %s)"
)


class JiraWebhookJWT(BaseAuthentication):
    def authenticate(self, request):
        try:
            inbound.verify_jwt(request.META.get("HTTP_AUTHORIZATION"))
        except jwt.InvalidTokenError as exc:
            log.warning("Jira webhook refused: %s", exc)
            raise BadSignature("Invalid or expired token.") from None
        data = jira_body(request).json()  # only now is the body read: the token is Atlassian's for this app
        site = inbound.site_for_webhook_ids(data.get("matchedWebhookIds"), data)
        if site is None:
            raise Refused(404, "No site registered these webhooks.")
        return None, site

    def authenticate_header(self, request):
        return "Bearer"


class JiraHubSignature(BaseAuthentication):
    def authenticate(self, request):
        site_uuid = request.parser_context["kwargs"].get("site_uuid")
        site = JiraSite.objects.filter(uuid=site_uuid).select_related("tenant").first()
        header = request.META.get("HTTP_X_HUB_SIGNATURE")
        # An unknown site answers like a bad signature: an unsigned caller learns nothing about which exist;
        # either is refused before the body is read.
        secret = site.webhook_secret if site else ""
        if not (secret and header and inbound.verify_hub_signature(secret, jira_body(request).raw, header)):
            log.warning("Jira webhook for %s refused: bad or missing X-Hub-Signature", site)
            raise BadSignature("Bad signature.")
        return None, site

    def authenticate_header(self, request):
        return 'HMAC-SHA256 header="X-Hub-Signature"'
