"""django-q2 tasks: `process_event(event_id)` turns one stored FreshBooks event into Jira writes.

1. Claim: under a row lock, only an event that is received or queued is taken (status processing,
   attempts + 1, started_at). A second worker handed the same event finds it processing and does nothing;
   an event left processing longer than the task timeout (its worker was stopped) may be taken over.
2. Run the handler for the resource kind (connector.handlers.HANDLERS) with FreshBooks and Jira clients bound
   to the event, so every outbound call is recorded as an audit.Attempt.
3. Finish: succeeded (with the Jira key), skipped (nothing to do, with the reason) or failed (with Jira's or
   FreshBooks' message, or the reconnect reason). Failed events wait for a replay; when the tenant has
   `auto_retry`, transient failures (network, 5xx, token endpoint down) are re-queued with exponential backoff
   through a one-off django-q2 Schedule, at most MAX_AUTO_ATTEMPTS times. 429 is waited out inside the clients.

Expected failures never raise out of the task (django-q2 would retry it blindly); only bugs do, after the
event is marked failed.
"""

import contextlib
import logging
import random
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from audit.models import Event
from connector.freshbooks.client import FreshBooksClient, FreshBooksError
from connector.handlers import HANDLERS, Job, Outcome, Skip
from connector.jira.client import JiraClient, JiraError
from connector.ledger import LedgerError
from connector.render import RenderError
from tenants.models import JiraSite
from tenants.tokens import ReconnectRequired, TokenRefreshError

log = logging.getLogger(__name__)

PROCESS_TASK = "connector.tasks.process_event"
CLAIMABLE = (Event.Status.RECEIVED, Event.Status.QUEUED)
MAX_AUTO_ATTEMPTS = 5
RETRY_BASE_SECONDS = 60
RETRY_MAX_SECONDS = 3600


def enqueue(event_id, *, actor="worker", delay=0):
    """Queue process_event now, or after `delay` seconds through a one-off Schedule."""
    from django_q.models import Schedule
    from django_q.tasks import async_task

    kwargs = {} if actor == "worker" else {"actor": actor}
    if delay <= 0:
        async_task(PROCESS_TASK, event_id, **kwargs)
        return
    Schedule.objects.create(
        name=f"retry event {event_id}"[:100],
        func=PROCESS_TASK,
        args=repr(event_id),
        kwargs=", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or None,
        schedule_type=Schedule.ONCE,
        repeats=-1,
        next_run=timezone.now() + timedelta(seconds=delay),
    )


def run_or_enqueue(event, *, actor="worker", sync=False):
    """Process the event here and now (sync; a bug is recorded on the event by process_event and does not
    propagate, so a batch goes on) or queue it for the worker. The event is refreshed when processed here."""
    if not sync:
        enqueue(event.pk, actor=actor)
        return
    with contextlib.suppress(Exception):
        process_event(event.pk, actor=actor)
    event.refresh_from_db()


def retry_delay(attempts):
    """Exponential backoff with jitter: ~1, 2, 4, 8 … minutes, at most an hour."""
    return int(
        min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1)) * random.uniform(0.8, 1.2)
    )


def stale(event):
    """Processing for longer than the task timeout: django-q2 has stopped that run, so it may be taken over."""
    from django.conf import settings

    timeout = timedelta(seconds=int(settings.Q_CLUSTER.get("timeout") or 300))
    return (
        event.status == Event.Status.PROCESSING
        and event.started_at is not None
        and event.started_at < timezone.now() - timeout
    )


def requeue_stale(limit=500):
    """Scheduled every 10 minutes: re-queue events whose worker was stopped mid-processing.

    An event left processing longer than the task timeout is taken over by the next process_event
    (see `stale`); this makes sure such a run happens without waiting for an operator's replay.
    """
    from django.conf import settings

    cutoff = timezone.now() - timedelta(seconds=int(settings.Q_CLUSTER.get("timeout") or 300))
    ids = list(
        Event.objects.filter(status=Event.Status.PROCESSING, started_at__lt=cutoff)
        .order_by("started_at")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in ids:
        enqueue(pk)
    if ids:
        log.warning("Re-queued %d event(s) left processing by a stopped worker: %s", len(ids), ids)
    return len(ids)


def claim(event_id):
    """The event, now processing, or None when it is not ours to process (gone, running, or finished)."""
    with transaction.atomic():
        event = Event.objects.select_for_update().filter(pk=event_id).first()
        if event is None or not (event.status in CLAIMABLE or stale(event)):
            return None
        event.status = Event.Status.PROCESSING
        event.attempts += 1
        event.started_at = timezone.now()
        event.finished_at = None
        event.save(update_fields=["status", "attempts", "started_at", "finished_at"])
    return event


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
    """(Outcome, transient) for the event; expected failures become failed outcomes."""
    handler = HANDLERS.get(event.name.split(".", 1)[0])
    if handler is None:
        return Outcome("skipped", detail=f"No handler for {event.name}."), False
    job = make_job(event, actor)
    if isinstance(job, Outcome):
        return job, False
    try:
        return handler(job), False
    except Skip as exc:
        return Outcome("skipped", detail="; ".join([str(exc), *job.notes])), False
    except JiraError as exc:
        return Outcome("failed", detail=str(exc)), exc.transient
    except FreshBooksError as exc:
        return Outcome("failed", detail=str(exc)), exc.transient
    except ReconnectRequired as exc:
        return Outcome("failed", detail=f"Reconnect required: {exc}"), False
    except TokenRefreshError as exc:
        return Outcome("failed", detail=str(exc)), True
    except RenderError as exc:
        return Outcome("failed", detail=f"Mapping template: {exc}"), False
    except LedgerError as exc:
        return Outcome("failed", detail=str(exc)), False


def finish(event, outcome):
    event.status = outcome.status
    event.status_detail = outcome.detail[:5000]
    if outcome.jira_key:
        event.jira_key = outcome.jira_key
    event.finished_at = timezone.now()
    event.save(update_fields=["status", "status_detail", "jira_key", "finished_at"])


def process_event(event_id, actor="worker"):
    """Process one stored event (see the module docstring). Returns the final status, for the task result."""
    event = claim(event_id)
    if event is None:
        return "not claimed"
    try:
        outcome, transient = run(event, actor)
    except Exception as exc:  # a bug: record it on the event, then let django-q2 see it
        log.exception("Processing event %s failed", event_id)
        finish(event, Outcome("failed", detail=f"Internal error: {type(exc).__name__}: {exc}"))
        raise
    tenant = event.tenant
    if outcome.status == "failed" and transient and tenant and tenant.auto_retry:
        if event.attempts < MAX_AUTO_ATTEMPTS:
            delay = retry_delay(event.attempts)
            outcome = Outcome(
                "queued",
                detail=f"{outcome.detail} — automatic retry {event.attempts} of {MAX_AUTO_ATTEMPTS - 1} in {delay} s",
            )
            finish(event, outcome)
            enqueue(event.pk, actor=actor, delay=delay)
            return outcome.status
        outcome.detail += f" — gave up after {event.attempts} attempts; replay when the cause is fixed"
    finish(event, outcome)
    log.info("Event %s %s: %s", event.pk, outcome.status, outcome.detail)
    return outcome.status
