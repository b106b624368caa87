"""Replay: run stored FreshBooks events through process_event again.

Safe by construction: every Jira write goes through the ledger (connector.ledger), so a replay adopts what an
earlier attempt already wrote instead of writing twice; earlier attempts stay on the event as history.
Replayable: received, queued, failed, skipped, succeeded and duplicate events, and events stuck in
"processing" longer than the task timeout (a worker died). Rolled-back events are refused.
Who asked is kept on the event (`replay_requested_by`/`_at`) and on every attempt the replay makes.
A queued replay of more than BULK_REPLAY events is bulk work: it waits in the bulk lane behind live deliveries
(connector.bulk), its issue creates sent 50 at a time.
"""

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from audit.models import Event
from connector import bulk, waiting
from connector.tasks import run_or_enqueue

BULK_REPLAY = bulk.BATCH  # a replay of more events than this goes through the bulk lane (connector.bulk)

REPLAYABLE = {
    Event.Status.RECEIVED, Event.Status.QUEUED, Event.Status.FAILED, Event.Status.SKIPPED,
    Event.Status.SUCCEEDED, Event.Status.DUPLICATE,
}  # fmt: skip


@dataclass
class ReplayResult:
    queued: list = field(default_factory=list)
    refused: list = field(default_factory=list)  # (event, reason)


def refusal(event):
    """Why `event` cannot be replayed, or "" when it can."""
    if event.source == Event.Source.JIRA:
        return "only FreshBooks events are replayed"
    if event.tenant_id is None:
        return "the event belongs to no tenant"
    if event.status == Event.Status.PROCESSING:
        return "" if event.is_stale else "it is being processed right now"
    if event.status not in REPLAYABLE:
        return f"it is {event.get_status_display().lower()}"
    return ""


def replay(events, actor, *, sync=False, dry_run=False, progress=None, every=100):
    """Re-queue `events` (a queryset or iterable of Event) for process_event; with sync=True process them
    inline instead; with dry_run=True change nothing and return what would be queued and refused.
    `progress(done, total)` is called after every `every` events and after the last. Returns a ReplayResult."""
    result = ReplayResult()
    pks = [event.pk for event in events]
    in_lane = not sync and len(pks) > BULK_REPLAY
    for done, pk in enumerate(pks, start=1):
        if dry_run:
            event = Event.objects.filter(pk=pk).first()
            reason = refusal(event) if event else ""
            if reason:
                result.refused.append((event, reason))
            elif event is not None:
                result.queued.append(event)
        else:
            _replay_one(pk, actor, sync, result, in_lane)
        if progress and (done % every == 0 or done == len(pks)):
            progress(done, len(pks))
    if in_lane and not dry_run:
        bulk.feed()
    return result


def _replay_one(pk, actor, sync, result, in_lane=False):
    with transaction.atomic():
        event = Event.objects.select_for_update().filter(pk=pk).first()
        if event is None:
            return
        reason = refusal(event)
        if reason:
            result.refused.append((event, reason))
            return
        previous = event.get_status_display().lower()
        event.status = Event.Status.WAITING if in_lane else Event.Status.QUEUED
        event.wait_until, event.wait_reason = None, waiting.BULK if in_lane else ""
        event.status_detail = f"Replay requested by {actor} (was {previous})."
        event.replay_requested_by, event.replay_requested_at = actor[:150], timezone.now()
        event.save(update_fields=["status", "status_detail", "replay_requested_by", "replay_requested_at",
                                  "wait_until", "wait_reason"])  # fmt: skip
    result.queued.append(event)
    if not in_lane:
        run_or_enqueue(event, actor=actor, sync=sync)
