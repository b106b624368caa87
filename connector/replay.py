"""Replay: run stored FreshBooks events through process_event again.

Safe by construction: every Jira write goes through the ledger (connector.ledger), so a replay adopts what an
earlier attempt already wrote instead of writing twice; earlier attempts stay on the event as history.
Replayable: received, queued, failed, skipped, succeeded and duplicate events, and events stuck in
"processing" longer than the task timeout (a worker died). Rolled-back events are refused.
"""

import contextlib
from dataclasses import dataclass, field

from django.db import transaction

from audit.models import Event

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
        from connector.tasks import stale

        return "" if stale(event) else "it is being processed right now"
    if event.status not in REPLAYABLE:
        return f"it is {event.get_status_display().lower()}"
    return ""


def replay(events, actor, *, sync=False):
    """Re-queue `events` (a queryset or iterable of Event) for process_event; with sync=True process them
    inline instead. Returns a ReplayResult; each queued event's detail says who asked."""
    from connector.tasks import enqueue, process_event

    result = ReplayResult()
    for pk in [event.pk for event in events]:
        with transaction.atomic():
            event = Event.objects.select_for_update().filter(pk=pk).first()
            if event is None:
                continue
            reason = refusal(event)
            if reason:
                result.refused.append((event, reason))
                continue
            previous = event.get_status_display().lower()
            event.status = Event.Status.QUEUED
            event.status_detail = f"Replay requested by {actor} (was {previous})."
            event.save(update_fields=["status", "status_detail"])
        result.queued.append(event)
        if sync:
            # A bug raises out of process_event after it logged it and marked the event failed: go on.
            with contextlib.suppress(Exception):
                process_event(event.pk, actor=actor)
            event.refresh_from_db()
        else:
            enqueue(event.pk, actor=actor)
    return result
