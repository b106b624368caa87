"""FreshBooks callback (webhook) registration and the verification handshake.

`register(account)` makes FreshBooks hold exactly one callback at our URI per event the tenant needs
(enabled issue mappings, plus time entries when worklog rules are enabled): it lists what exists,
deletes duplicates and callbacks for events no longer needed, creates what is missing and mirrors
the result into FreshBooksWebhook rows. Callbacks we created (a row on file) at an older URI are deleted;
other callbacks at other URIs (other integrations) are left alone.

Handshake: FreshBooks POSTs `name=callback.verify` with a verifier; the webhook view stores it
(encrypted) on the row and enqueues `confirm_verification(row id)`, which PUTs it back and marks the
row verified. Task arguments never carry the verifier: django-q stores them in clear.
"""

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from connector.errors import FreshBooksError
from connector.freshbooks.client import FreshBooksClient
from connector.kinds import KINDS, kind_for
from connector.models import IssueMapping, WorklogRule
from tenants.models import FreshBooksAccount, FreshBooksWebhook

log = logging.getLogger(__name__)

TIME_ENTRY_EVENTS = KINDS["time_entry"].events  # needed when the tenant has enabled worklog rules


def webhook_uri():
    return settings.PUBLIC_BASE_URL + reverse("freshbooks-webhook")


def needed_events(tenant):
    """The FreshBooks events the tenant's enabled mappings and worklog rules need (declared events only:
    connector.kinds; a mapping saved before events were declared is left out and logged)."""
    events = set(IssueMapping.objects.filter(tenant=tenant, enabled=True).values_list("event", flat=True))
    if WorklogRule.objects.filter(tenant=tenant, enabled=True).exists():
        events.update(TIME_ENTRY_EVENTS)
    events = {e.strip() for e in events if e and e.strip()}
    unknown = {e for e in events if kind_for(e) is None}
    if unknown:
        log.warning("Tenant %s: mappings for undeclared events %s get no callback", tenant, sorted(unknown))
    return events - unknown


@dataclass
class Registration:
    account: FreshBooksAccount
    created: list = field(default_factory=list)  # event names
    deleted: list = field(default_factory=list)  # (event, callback id)
    kept: list = field(default_factory=list)  # event names
    unverified: list = field(default_factory=list)  # event names still awaiting the handshake

    def summary(self):
        parts = [
            f"created {', '.join(self.created)}" if self.created else "",
            f"removed {', '.join(f'{e} #{i}' for e, i in self.deleted)}" if self.deleted else "",
            f"kept {len(self.kept)}" if self.kept else "",
            f"{len(self.unverified)} awaiting verification" if self.unverified else "",
        ]
        return "; ".join(p for p in parts if p) or "no callbacks needed"


def _same_uri(a, b):
    return (a or "").rstrip("/") == (b or "").rstrip("/")


def _sync_row(account, callback, uri):
    """Create or refresh the row for a FreshBooks callback.

    Only confirm_verification() makes a row verified (FreshBooks accepted our verifier); a row stops being
    verified when FreshBooks says its callback is not.
    """
    row, _ = FreshBooksWebhook.objects.get_or_create(
        account=account,
        callback_id=int(callback["callbackid"]),
        defaults={"event": callback["event"], "uri": callback.get("uri") or uri},
    )
    row.event = callback["event"]
    row.uri = callback.get("uri") or uri
    if row.verified and not callback.get("verified"):
        row.verified, row.verified_at = False, None
    row.save()
    return row


def register(account, actor="command"):
    """Reconcile FreshBooks' callbacks at our URI with the events the tenant needs. Idempotent.

    Raises FreshBooksError or tenants.tokens.ReconnectRequired; rows always reflect what was done.
    """
    client = FreshBooksClient(account, actor=actor)
    uri = webhook_uri()
    needed = needed_events(account.tenant)
    result = Registration(account)
    listed = client.list_callbacks()
    ours = [cb for cb in listed if _same_uri(cb.get("uri"), uri)]
    # Callbacks we created (a row on file) at another URI are ours too: PUBLIC_BASE_URL changed. They are
    # deleted (FreshBooks would keep delivering to a dead URI) and the current URI registered instead.
    created_by_us = set(account.webhooks.values_list("callback_id", flat=True))
    moved = [
        cb for cb in listed if not _same_uri(cb.get("uri"), uri) and int(cb["callbackid"]) in created_by_us
    ]
    # Keep one callback per needed event, preferring a verified one, then the oldest.
    keep, extra = {}, []
    for cb in sorted(ours, key=lambda c: (not c.get("verified"), int(c["callbackid"]))):
        if cb.get("event") in needed and cb["event"] not in keep:
            keep[cb["event"]] = cb
        else:
            extra.append(cb)
    with transaction.atomic():
        known = {int(cb["callbackid"]) for cb in [*ours, *moved]}
        account.webhooks.exclude(callback_id__in=known).delete()  # gone from FreshBooks
        for cb in keep.values():
            _sync_row(account, cb, uri)
    for cb in [*moved, *extra]:
        try:
            client.delete_callback(cb["callbackid"])
        except FreshBooksError as exc:
            if exc.status != 404:
                raise
        account.webhooks.filter(callback_id=int(cb["callbackid"])).delete()
        result.deleted.append((cb.get("event", "?"), int(cb["callbackid"])))
    for event in sorted(needed - keep.keys()):
        cb = client.create_callback(event, uri)
        keep[event] = cb
        _sync_row(account, cb, uri)
        result.created.append(event)
    result.kept = sorted(set(keep) - set(result.created))
    result.unverified = sorted(
        account.webhooks.filter(verified=False, event__in=list(keep)).values_list("event", flat=True)
    )
    log.info("FreshBooks callbacks for %s: %s", account, result.summary())
    return result


def resend_verification(webhook, actor="command"):
    """Ask FreshBooks to send the callback.verify delivery again (only for unverified rows).

    A verifier still pending confirmation is dropped first, so the one FreshBooks sends next is kept.
    """
    if webhook.verified:
        return False
    FreshBooksWebhook.objects.filter(pk=webhook.pk, verified=False).update(
        verifier="", updated_at=timezone.now()
    )
    FreshBooksClient(webhook.account, actor=actor).resend_verification(webhook.callback_id)
    return True


def store_verifier(webhook, verifier):
    """Handshake step 1 (in the request): keep the verifier, confirm after commit in a task. True when stored.

    Anyone can send a callback.verify delivery (it is unsigned), so neither a verified row nor a verifier
    still pending confirmation is ever replaced: one confirmation per callback at a time. A pending verifier
    ends when FreshBooks accepts it (verified) or refuses it (dropped), or when an operator resends the
    verification.
    """
    if webhook.verified or webhook.verifier:
        return False
    webhook.verifier = verifier
    webhook.save(update_fields=["verifier", "updated_at"])
    return True


def confirm_verification(webhook_id):
    """Handshake step 2 (django-q task): PUT the stored verifier back; on success the row is verified.

    A verifier FreshBooks refuses is discarded (it may have been forged); network errors and 5xx raise
    so that django-q retries.
    """
    row = FreshBooksWebhook.objects.select_related("account").filter(pk=webhook_id).first()
    if row is None or row.verified or not row.verifier:
        return "nothing to confirm"
    verifier = row.verifier
    try:
        FreshBooksClient(row.account).verify_callback(row.callback_id, verifier)
    except FreshBooksError as exc:
        if exc.transient:
            raise
        with transaction.atomic():
            current = FreshBooksWebhook.objects.select_for_update().filter(pk=row.pk).first()
            if current and not current.verified and current.verifier == verifier:
                current.verifier = ""
                current.save(update_fields=["verifier", "updated_at"])
        log.warning("FreshBooks refused the verifier of callback %s: %s", row.callback_id, exc)
        return f"refused: {exc}"
    with transaction.atomic():
        current = FreshBooksWebhook.objects.select_for_update().filter(pk=row.pk).first()
        if current and current.verifier == verifier:
            current.verified, current.verified_at = True, timezone.now()
            current.save(update_fields=["verified", "verified_at", "updated_at"])
    log.info("FreshBooks callback %s (%s) verified", row.callback_id, row.event)
    return "verified"
