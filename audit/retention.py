"""Audit retention: remove the content of old finished events, keep what exactly-once and the trail need.

Pruning an event clears its payload and fetched record and the request/response bodies of its attempts (every
encrypted field of Event and Attempt), and stamps `pruned_at`. The event's metadata (tenant, name, object id, status, Jira key, times), its attempts'
metadata (action, HTTP status, error, duration, actor) and the ledger links (connector.Link) stay: a replayed
duplicate delivery still finds its link and writes nothing twice. Finished: succeeded, skipped, duplicate,
failed or rolled back — never queued, received or processing. A pruned failed event can still be replayed
(processing fetches the record from FreshBooks again); an old event's content can no longer be inspected.

`manage.py prune_audit --older-than DAYS [--dry-run]` prunes on demand; with AUDIT_RETENTION_DAYS > 0 a daily
django-q2 schedule ("prune-audit", registered by migrate) prunes events older than that.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from fernet_fields import EncryptedField

from audit.models import Attempt, Event

FINISHED = (
    Event.Status.SUCCEEDED,
    Event.Status.SKIPPED,
    Event.Status.DUPLICATE,
    Event.Status.FAILED,
    Event.Status.ROLLED_BACK,
)


def cleared(model):
    """{field: empty value} for every encrypted field of `model`: the content pruning removes (payloads,
    records, bodies — and any encrypted field added later, e.g. values kept for a rollback)."""
    fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedField)]
    return {f.name: None if f.null else "" for f in fields}


@dataclass
class Pruned:
    events: int = 0
    attempts: int = 0
    cutoff: object = None


def prunable(older_than_days, now=None):
    """Finished, not yet pruned events that finished (or, never started, arrived) before the cutoff."""
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    ended = Q(finished_at__lt=cutoff) | Q(finished_at__isnull=True, received_at__lt=cutoff)
    return Event.objects.filter(ended, status__in=FINISHED, pruned_at__isnull=True), cutoff


def prune(older_than_days, *, dry_run=False, batch_size=500, progress=None):
    """Prune finished events older than `older_than_days` days (>= 1) in batches; returns Pruned counts.

    dry_run: count what would be pruned and change nothing. progress(Pruned) is called after each batch."""
    if older_than_days < 1:
        raise ValueError("older_than_days must be at least 1")
    events, cutoff = prunable(older_than_days)
    result = Pruned(cutoff=cutoff)
    if dry_run:
        result.events = events.count()
        result.attempts = Attempt.objects.filter(event__in=events).count()
        return result
    while True:
        with transaction.atomic():
            # Rows a replay is claiming right now are skipped (their status is about to change).
            ids = list(
                events.order_by("pk")
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                return result
            result.attempts += Attempt.objects.filter(event_id__in=ids).update(**cleared(Attempt))
            result.events += Event.objects.filter(pk__in=ids).update(
                **cleared(Event), pruned_at=timezone.now()
            )
        if progress:
            progress(result)


def prune_scheduled():
    """The daily task: prune with AUDIT_RETENTION_DAYS (does nothing when it is 0)."""
    days = settings.AUDIT_RETENTION_DAYS
    if days <= 0:
        return "retention off (AUDIT_RETENTION_DAYS=0)"
    result = prune(days)
    return f"pruned {result.events} event(s), {result.attempts} attempt(s) finished before {result.cutoff:%Y-%m-%d}"
