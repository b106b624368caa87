"""The bulk lane: reconcile catch-up, backfill and bulk replay go behind live deliveries, tenants take turns, and
their issues are created 50 at a time with Jira's bulk create (connector.ledger_bulk).

django-q2 has no task priorities (one FIFO list per cluster), and a second cluster only for bulk work would need
one more process on every host. So the database is the bulk queue, and the broker only ever holds a little of it:

- `hold(events)`: bulk events wait (status waiting, reason waiting.BULK, no time: "waiting for its turn (bulk
  work)") instead of going to the broker. Reconcile and backfill hold what they find; so does a large replay.
- `feed()`: while fewer than `in_flight_limit()` batches of bulk work are queued or running (one less than the
  worker processes, at least one), release the next batch: up to BATCH held events of the tenant whose turn it is
  (round robin: the tenant served longest ago), queued as one task `process_batch(ids)`. Called after every
  batch, after holding, and every minute (schedule "feed-bulk-work"). One feeder at a time (a row lock).
- Live deliveries go to the broker at once: ahead of them are at most `in_flight_limit()` bulk batches, and
  a worker process is left for them whenever there are two or more.
- `process_batch(ids)`: after each batch its worker rests half as long as the batch took (REST), leaving the
  CPU to live work (quota, not CPU, limits how fast Jira can be written). The batch's issue creates (`<kind>.create` of an issue kind, a mapping applying) are
  rendered one by one and sent in one bulk create; everything else (worklogs, updates, clients, an issue in
  doubt) goes through process_event as usual. Every outcome is settled as process_event settles it.
"""

import logging
import time

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from audit.models import Event
from config.queueing import enqueue
from connector import waiting
from connector.errors import ConnectorError, MustWait
from connector.handlers import Outcome, Skip
from connector.handlers.issues import candidate_mappings, render_issue
from connector.handlers.job import fetch_with_related
from connector.jira.client import JiraClient
from connector.kinds import KINDS
from connector.ledger_bulk import BULK_MAX, create_issues
from connector.models import QuotaState
from connector.schedules import PROCESS_BATCH
from connector.tasks import claim, finish, make_job, process_event, settle

log = logging.getLogger(__name__)

BATCH = BULK_MAX
LANE = "lane:bulk"  # the feeder's lock row (connector.QuotaState); slots: [[tenant id, last served], …]
IN_LANE = (Event.Status.QUEUED, Event.Status.PROCESSING)
REST, REST_MAX_SECONDS = (
    0.5,
    10.0,
)  # after a batch, rest half as long as it took (quota, not CPU, is the limit)


def in_flight_limit():
    return max(1, int(settings.Q_CLUSTER.get("workers") or 1) - 1)


def hold(events):
    """Put the events of the queryset `events` into the bulk lane; returns how many, after feeding it."""
    held = 0
    for event in events:
        held += waiting.wait(event, None, waiting.BULK)
    feed()
    return held


def _turns(row, tenants):
    """The tenants with held bulk work, the one served longest ago (or never) first."""
    served = {tenant: at for tenant, at in row.slots or []}
    return sorted(tenants, key=lambda tenant: (served.get(tenant, 0.0), tenant))


def feed():
    """Release batches of held bulk work while fewer than in_flight_limit() are queued or running; returns the
    number of batches released."""
    QuotaState.objects.get_or_create(scope=LANE)
    batches = []
    with transaction.atomic():
        row = QuotaState.objects.select_for_update().get(scope=LANE)
        running = Event.objects.filter(status__in=IN_LANE, wait_reason=waiting.BULK).count()
        room = in_flight_limit() - -(-running // BATCH)  # batches, rounded up
        held = Event.objects.filter(status=Event.Status.WAITING, wait_reason=waiting.BULK)
        held = held.filter(Q(wait_until__isnull=True) | Q(wait_until__lte=timezone.now()))
        tenants = list(held.values_list("tenant_id", flat=True).distinct())
        served = dict(row.slots or [])
        for tenant in _turns(row, tenants)[: max(0, room)]:
            ids = list(
                held.filter(tenant_id=tenant)
                .order_by("received_at", "id")
                .values_list("pk", flat=True)[:BATCH]
            )
            # Queued, but still marked as bulk work (wait_reason), so the lane can count what is in flight.
            Event.objects.filter(pk__in=ids, status=Event.Status.WAITING).update(
                status=Event.Status.QUEUED, wait_until=None
            )
            served[tenant] = time.time()
            batches.append(ids)
        row.slots = [
            [tenant, at] for tenant, at in served.items() if tenant in tenants or at > time.time() - 3600
        ]
        row.save(update_fields=["slots", "updated_at"])
    for ids in batches:  # after the commit: a worker must find them queued
        enqueue(PROCESS_BATCH, ids)
    return len(batches)


def bulk_creatable(event):
    """Whether the event may go in a bulk create: `<kind>.create` of a kind that writes issues (not clients)."""
    kind, _, action = event.name.partition(".")
    declared = KINDS.get(kind)
    return action == "create" and declared is not None and declared.writes == "issue"


def process_batch(event_ids, actor="worker"):
    """django-q2 task: process one batch of bulk work (see the module docstring); returns {status: count}."""
    statuses, started = {}, time.monotonic()
    try:
        creates = []
        for pk in event_ids:
            event = Event.objects.filter(pk=pk).only("name").first()
            if event is None:
                continue
            if not bulk_creatable(event):
                status = process_event(pk, actor=actor)
                statuses[status] = statuses.get(status, 0) + 1
                continue
            claimed = claim(pk)
            if claimed is not None:
                creates.append(claimed)
        for status in _create_in_bulk(creates, actor):
            statuses[status] = statuses.get(status, 0) + 1
        # Leave the CPU to live work for a while: bulk work takes at most 1 / (1 + REST) of one worker.
        time.sleep(min(REST_MAX_SECONDS, (time.monotonic() - started) * REST))
    finally:
        feed()
    return statuses


def _prepare(event, actor):
    """(job, mapping, fields, notes) ready to create, or the status after settling the event another way."""
    job = make_job(event, actor)
    if isinstance(job, Outcome):
        return settle(event, job, False, actor)
    if event.tenant.paused_at is not None:  # paused meanwhile: process_event holds it
        return _one_by_one(event, actor)
    try:
        mappings = candidate_mappings(job)
        if not mappings:
            raise Skip(f"no enabled mapping for {event.name}")
        record, related = fetch_with_related(job)
        mapping, fields, _kinds, notes, _users, _context = render_issue(job, mappings, record, related)
    except MustWait as exc:
        return _back_in_lane(event, exc)
    except Skip as exc:
        return settle(event, Outcome("skipped", detail="; ".join([str(exc), *job.notes])), False, actor)
    except ConnectorError as exc:
        return settle(event, Outcome("failed", detail=exc.detail), exc.transient, actor)
    return job, mapping, fields, notes


def _create_in_bulk(events, actor):
    """Yield the final status of each event: prepared ones are created in one bulk request per tenant."""
    ready = []
    for event in events:
        prepared = _prepare(event, actor)
        if isinstance(prepared, str):
            yield prepared
        else:
            ready.append(prepared)
    by_tenant = {}
    for item in ready:
        by_tenant.setdefault(item[0].tenant.pk, []).append(item)
    for items in by_tenant.values():
        yield from _send(items, actor)


def _send(items, actor):
    first = items[0][0]
    client = JiraClient(first.site, event=first.event, actor=actor, bulk=True)
    kind = first.kind
    try:
        results = create_issues(
            client=client,
            tenant=first.tenant,
            object_type=kind,
            items=[(job.event.object_id, fields, job.event) for job, _, fields, _ in items],
        )
    except MustWait as exc:
        for job, *_ in items:
            yield _back_in_lane(job.event, exc)
        return
    except ConnectorError as exc:
        for job, *_ in items:
            yield settle(job.event, Outcome("failed", detail=exc.detail), exc.transient, actor)
        return
    size = len(items)
    for job, mapping, _fields, notes in items:
        result, value = results[str(job.event.object_id)]
        event = job.event
        if result == "created":
            job.notes.extend(notes)
            outcome = job.done(
                value.jira_issue_key,
                f"issue {value.jira_issue_key} (mapping “{mapping.name}”, "
                f"bulk create of {size} by event #{first.event.pk})",
            )
            finish(event, outcome)
            yield outcome.status
        elif result == "failed":
            yield settle(event, Outcome("failed", detail=value), False, actor)
        else:  # settled (deleted, rolled back, created meanwhile) or in doubt: the one-by-one way decides
            yield _one_by_one(event, actor)


def _one_by_one(event, actor):
    """Process a claimed event of the batch the usual way (process_event claims it again: not counted twice)."""
    Event.objects.filter(pk=event.pk).update(status=Event.Status.QUEUED, attempts=F("attempts") - 1)
    return process_event(event.pk, actor=actor)


def _back_in_lane(event, exc):
    """Jira asks bulk work to wait (its quota): the event goes back to the lane until then, with the reason."""
    waiting.wait(event, exc.until, waiting.BULK, exc.detail)
    Event.objects.filter(pk=event.pk).update(attempts=F("attempts") - 1, record=event.record)
    return Event.Status.WAITING
