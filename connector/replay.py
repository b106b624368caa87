"""Replay: run stored FreshBooks events through process_event again.

Safe by construction: every Jira write goes through the ledger (connector.ledger), so a replay adopts what an
earlier attempt already wrote instead of writing twice; earlier attempts stay on the event as history.
Replayable: received, queued, failed, skipped, succeeded and duplicate events, and events stuck in
"processing" longer than the task timeout (a worker died). Rolled-back events are refused.
Who asked is kept on the event (`replay_requested_by`/`_at`) and on every attempt the replay makes.
A large group (the Failed events list) is replayed by one background task with its progress on an
audit.ReplayBatch (`start_batch`, `run_batch`), never inside a web request.
Bulk replays — a batch, or a queued replay of more than BULK_REPLAY events — are bulk work: the events wait in
the bulk lane behind live deliveries (connector.bulk), their issue creates sent 50 at a time.
"""

import logging
import time
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from audit.models import Event, ReplayBatch
from config.queueing import enqueue
from connector import bulk, waiting
from connector.schedules import REPLAY_BATCH
from connector.tasks import run_or_enqueue

log = logging.getLogger(__name__)
BULK_REPLAY = bulk.BATCH  # a replay of more events than this goes through the bulk lane (connector.bulk)

REPLAYABLE = {
    Event.Status.RECEIVED,
    Event.Status.QUEUED,
    Event.Status.FAILED,
    Event.Status.SKIPPED,
    Event.Status.SUCCEEDED,
    Event.Status.DUPLICATE,
    Event.Status.RESOLVED,
}


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
        event.save(
            update_fields=[
                "status",
                "status_detail",
                "replay_requested_by",
                "replay_requested_at",
                "wait_until",
                "wait_reason",
            ]
        )
    result.queued.append(event)
    if not in_lane:
        run_or_enqueue(event, actor=actor, sync=sync)


BATCH_SLICE_SECONDS = 60  # one run of the batch task, well inside Q_TIMEOUT; the rest goes on in the next run
BATCH_SAVE_EVERY = 100  # progress written every this many events
MAX_REFUSALS_SHOWN = 20


def start_batch(events, *, actor, description):
    """Queue the replay of `events` (a queryset) as one background task; returns its audit.ReplayBatch, whose
    progress the admin shows. The events are taken oldest first, as they are now (their ids are kept)."""
    ids = list(events.order_by("received_at", "id").values_list("pk", flat=True))
    batch = ReplayBatch.objects.create(
        description=description[:300], event_ids=ids, requested_by=actor[:150], total=len(ids)
    )
    enqueue(REPLAY_BATCH, batch.pk, on_commit=True)
    return batch


def run_batch(batch_id, slice_seconds=None):
    """The batch task: replay the batch's events from where it stopped, for at most `slice_seconds`, then queue
    itself again for the rest (so a group of any size never meets the task timeout). Returns the batch's state."""
    batch = ReplayBatch.objects.get(pk=batch_id)
    if batch.state in (ReplayBatch.State.FINISHED, ReplayBatch.State.FAILED):
        return batch.state
    deadline = time.monotonic() + (BATCH_SLICE_SECONDS if slice_seconds is None else slice_seconds)
    batch.state = ReplayBatch.State.RUNNING
    batch.started_at = batch.started_at or timezone.now()
    fields = ["state", "started_at", "done", "queued", "refused", "detail", "finished_at"]
    try:
        for pk in batch.event_ids[batch.done :]:
            result = ReplayResult()
            _replay_one(pk, batch.requested_by, False, result, in_lane=True)
            batch.done += 1
            batch.queued += len(result.queued)
            batch.refused += len(result.refused)
            for event, reason in result.refused:
                if batch.detail.count("\n") < MAX_REFUSALS_SHOWN:
                    batch.detail += f"#{event.pk}: {reason}\n"
            if batch.done % BATCH_SAVE_EVERY == 0:
                batch.save(update_fields=fields)
            if batch.done % bulk.BATCH == 0:
                bulk.feed()
            if time.monotonic() > deadline and batch.done < batch.total:
                batch.save(update_fields=fields)
                enqueue(REPLAY_BATCH, batch.pk)
                return batch.state
    except Exception as exc:
        log.exception("Replay batch %s stopped", batch_id)
        batch.state, batch.finished_at = ReplayBatch.State.FAILED, timezone.now()
        batch.detail += (
            f"Stopped after {batch.done} event(s): {type(exc).__name__}. Start a new replay for the rest."
        )
        batch.save(update_fields=fields)
        raise
    batch.state, batch.finished_at = ReplayBatch.State.FINISHED, timezone.now()
    batch.save(update_fields=fields)
    bulk.feed()
    log.info("Replay batch %s finished: %d queued, %d refused", batch.pk, batch.queued, batch.refused)
    return batch.state
