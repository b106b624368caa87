"""django-q2 tasks: `process_event(event_id)` turns one stored FreshBooks event into Jira writes.

1. Claim: under a row lock, only an event that is received or queued is taken (status processing,
   attempts + 1, started_at). A second worker handed the same event finds it processing and does nothing;
   an event left processing longer than the task timeout (its worker was stopped) may be taken over. A run
   refused while the event is processing but not yet stale queues one more run for the moment it becomes stale
   (`check_when_stale`): the run holding it may be on a host that went away.
   Hold: the event of a paused tenant (tenants.pausing) is put into waiting ("tenant paused") right after the
   claim, before anything is fetched or written; resuming the tenant queues it again.
2. Run the handler for the resource kind (connector.handlers.HANDLERS) with FreshBooks and Jira clients bound
   to the event, so every outbound call is recorded as an audit.Attempt.
3. Finish: succeeded (with the Jira key), skipped (nothing to do, with the reason) or failed (with Jira's or
   FreshBooks' message, or the reconnect reason), read from the connector.errors attributes. Failed events
   wait for a replay; when the tenant has `auto_retry`, transient failures are re-queued through a one-off
   django-q2 Schedule as connector.retry says.
4. Wait: a vendor that asks for a longer wait than one call may take (connector.errors.MustWait: Jira's quota,
   a long Retry-After) puts the event into waiting (connector.waiting), not failed; `resume_waiting`
   (scheduled every minute) queues it again when its time has come, with auto retry on or off.

Expected failures never raise out of the task (django-q2 would retry it blindly); only bugs do, after the
event is marked failed.
"""

import contextlib
import logging
from datetime import timedelta

from django.db.models import F, Q
from django.utils import timezone

from audit import alerts, metrics
from audit.models import Event
from config.queueing import enqueue
from connector import waiting
from connector.errors import ConnectorError, MustWait
from connector.freshbooks.client import FreshBooksClient
from connector.handlers import HANDLERS, Job, Outcome, Skip
from connector.jira.client import JiraClient
from connector.kinds import kind_for
from connector.retry import MAX_AUTO_ATTEMPTS, task_retry_delay, task_timeout
from connector.schedules import PROCESS_EVENT
from tenants.models import JiraSite, Tenant

log = logging.getLogger(__name__)

CLAIMABLE = (Event.Status.RECEIVED, Event.Status.QUEUED)
__all__ = [
    "MAX_AUTO_ATTEMPTS",
    "process_event",
    "queue_event",
    "requeue_stale",
    "resume",
    "resume_waiting",
    "run_or_enqueue",
]


def queue_event(event_id, *, actor="worker", delay=0):
    """Queue process_event now, or after `delay` seconds through a one-off schedule."""
    kwargs = {} if actor == "worker" else {"actor": actor}
    enqueue(PROCESS_EVENT, event_id, delay=delay, **kwargs)


def run_or_enqueue(event, *, actor="worker", sync=False):
    """Process the event here and now (sync; a bug is recorded on the event by process_event and does not
    propagate, so a batch goes on) or queue it for the worker. The event is refreshed when processed here."""
    if not sync:
        queue_event(event.pk, actor=actor)
        return
    with contextlib.suppress(Exception):
        process_event(event.pk, actor=actor)
    event.refresh_from_db()


def requeue_stale(limit=500):
    """Scheduled every 10 minutes: re-queue events whose worker was stopped mid-processing.

    An event left processing longer than the task timeout is taken over by the next process_event
    (see `Event.is_stale`); this makes sure such a run happens without waiting for an operator's replay.
    """
    cutoff = timezone.now() - timedelta(seconds=task_timeout())
    ids = list(
        Event.objects.filter(status=Event.Status.PROCESSING, started_at__lt=cutoff)
        .order_by("started_at")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in ids:
        queue_event(pk)
    if ids:
        log.warning("Re-queued %d event(s) left processing by a stopped worker: %s", len(ids), ids)
    return len(ids)


def resume_waiting(limit=500):
    """Scheduled every minute: queue the waiting events whose `wait_until` has passed (connector.waiting).
    Returns how many were queued."""
    ids = waiting.release_due(limit=limit)
    for pk in ids:
        queue_event(pk)
    if ids:
        log.info("Resumed %d waiting event(s)", len(ids))
    return len(ids)


def resume(events, *, actor="worker"):
    """Queue the waiting events of the queryset `events` now, whatever their time (e.g. a paused tenant is
    resumed: `resume(Event.objects.filter(tenant=t, wait_reason=waiting.TENANT_PAUSED))`). Returns the ids."""
    ids = waiting.release(events)
    for pk in ids:
        queue_event(pk, actor=actor)
    return ids


def claim(event_id):
    """The event, now processing, or None when it is not ours to process (gone, running, or finished).

    One conditional UPDATE (no explicit transaction): of two workers handed the same event, the second waits
    for the first's row lock, then finds the row processing and claims nothing (PostgreSQL re-checks the
    condition on the updated row; SQLite serialises writers). Stale: processing for longer than Q_TIMEOUT.
    """
    now = timezone.now()
    stale = Q(status=Event.Status.PROCESSING, started_at__lt=now - timedelta(seconds=task_timeout()))
    claimed = Event.objects.filter(Q(status__in=CLAIMABLE) | stale, pk=event_id).update(
        status=Event.Status.PROCESSING, attempts=F("attempts") + 1, started_at=now, finished_at=None
    )
    return Event.objects.select_related("tenant").get(pk=event_id) if claimed else None


def check_when_stale(event_id):
    """After a refused claim: when the event is processing, not yet stale, queue one more run of it for one
    second after it becomes stale (Q_TIMEOUT after its run started); otherwise do nothing.

    The refused run may be django-q2 handing out again, Q_RETRY after it was first taken, the task of a run whose
    host went away (its network cut). Q_RETRY exceeds Q_TIMEOUT, but that run started only after waiting in its
    cluster's own queue, so it may not be stale yet; the hand-out is acknowledged all the same, and without this
    the event would wait for the ten-minute `requeue_stale` sweep. A run still alive finishes before then, and the
    extra run finds the event finished and does nothing."""
    started = (
        Event.objects.filter(pk=event_id, status=Event.Status.PROCESSING)
        .values_list("started_at", flat=True)
        .first()
    )
    if started is None:
        return
    stale_at = started + timedelta(seconds=task_timeout())
    queue_event(event_id, delay=max(1, int((stale_at - timezone.now()).total_seconds()) + 1))


def make_job(event, actor):
    """The handler's Job, or an Outcome when the event cannot be processed at all."""
    tenant = event.tenant
    if tenant is None:
        return Outcome("failed", detail="The event belongs to no tenant.")
    accounts = tenant.freshbooks_accounts.all()
    account = (
        accounts.filter(account_id=event.account_id).first()
        or (accounts.filter(business_id=event.business_id).first() if event.business_id else None)
        or accounts.first()
    )
    if account is None:
        return Outcome("failed", detail=f"Tenant {tenant.slug} has no FreshBooks account connected.")
    site = JiraSite.objects.filter(tenant=tenant).first()
    if site is None:
        return Outcome("failed", detail=f"Tenant {tenant.slug} has no Jira site connected.")
    return Job(
        event=event,
        tenant=tenant,
        account=account,
        site=site,
        fb=FreshBooksClient(account, event=event, actor=actor),
        jira=JiraClient(site, event=event, actor=actor),
    )


def run(event, actor):
    """(Outcome, transient) for the event; expected failures (connector.errors) become failed outcomes."""
    kind = kind_for(event.name)  # only declared events are stored, but older rows may hold others
    handler = HANDLERS.get(kind.name) if kind else None
    if handler is None:
        return Outcome("skipped", detail=f"No handler for {event.name}."), False
    job = make_job(event, actor)
    if isinstance(job, Outcome):
        return job, False
    try:
        return handler(job), False
    except MustWait as exc:
        return Outcome("waiting", detail=exc.detail, wait_until=exc.until, wait_reason=exc.reason), False
    except Skip as exc:
        return Outcome("skipped", detail="; ".join([str(exc), *job.notes])), False
    except ConnectorError as exc:
        return Outcome("failed", detail=exc.detail), exc.transient


def finish(event, outcome):
    event.status = outcome.status
    event.status_detail = outcome.detail[:5000]
    if outcome.jira_key:
        event.jira_key = outcome.jira_key
    event.finished_at = timezone.now()
    event.save(update_fields=["status", "status_detail", "jira_key", "finished_at", "record"])
    metrics.event_finished(event)
    if event.status == Event.Status.FAILED:
        alerts.event_failed(event)


def held_by_pause(event, actor):
    """True when the event's tenant is paused (tenants.pausing): the event now waits, "tenant paused" with no
    time, and nothing was sent anywhere; the claim is undone (no processing run counted).

    Checked again once waiting: a resume that came in between releases it here (the resume's own release may
    queue it too; the second run finds it claimed or finished and does nothing)."""
    if event.tenant is None or event.tenant.paused_at is None:
        return False
    if not waiting.wait(event, None, waiting.TENANT_PAUSED):
        return False
    Event.objects.filter(pk=event.pk).update(attempts=F("attempts") - 1, started_at=None)
    if not Tenant.objects.filter(pk=event.tenant_id, paused_at__isnull=False).exists():
        resume(Event.objects.filter(pk=event.pk, wait_reason=waiting.TENANT_PAUSED), actor=actor)
    log.info("Event %s held: its tenant %s is paused", event.pk, event.tenant.slug)
    return True


def process_event(event_id, actor="worker"):
    """Process one stored event (see the module docstring). Returns the final status, for the task result."""
    event = claim(event_id)
    if event is None:
        check_when_stale(event_id)
        return "not claimed"
    if held_by_pause(event, actor):
        return Event.Status.WAITING
    try:
        outcome, transient = run(event, actor)
    except Exception as exc:  # a bug: record it on the event, then let django-q2 see it
        log.exception("Processing event %s failed", event_id)
        finish(event, Outcome("failed", detail=f"Internal error: {type(exc).__name__}: {exc}"))
        raise
    return settle(event, outcome, transient, actor)


def settle(event, outcome, transient, actor="worker"):
    """Record the outcome of a processing run of `event` (claimed): waiting, an automatic retry, or final.
    Returns the status. Also used by connector.bulk for the events of a bulk create."""
    if outcome.status == "waiting" and waiting.wait(
        event, outcome.wait_until, outcome.wait_reason, outcome.detail
    ):
        Event.objects.filter(pk=event.pk).update(record=event.record)
        log.info("Event %s %s", event.pk, waiting.describe(event))
        return outcome.status
    tenant = event.tenant
    if outcome.status == "failed" and transient and tenant and tenant.auto_retry:
        if event.attempts < MAX_AUTO_ATTEMPTS:
            delay = task_retry_delay(event.attempts)
            outcome = Outcome(
                "queued",
                detail=f"{outcome.detail} — automatic retry {event.attempts} of {MAX_AUTO_ATTEMPTS - 1} in {delay} s",
            )
            finish(event, outcome)
            queue_event(event.pk, actor=actor, delay=delay)
            return outcome.status
        outcome.detail += f" — gave up after {event.attempts} attempts; replay when the cause is fixed"
    finish(event, outcome)
    log.info("Event %s %s: %s", event.pk, outcome.status, outcome.detail)
    return outcome.status
