"""Reconcile and backfill: find the FreshBooks records whose webhook deliveries were lost, and process them.

FreshBooks does not promise delivery, so a pass lists, for every kind the tenant maps (an enabled issue
mapping on `<kind>.create`; time entries when an enabled worklog rule exists), the records updated since the
tenant's watermark minus OVERLAP (accounting lists filtered on `updated`, US/Eastern; time entries by
business on `updated_since`, UTC), MAX_PER_PAGE at a time, backing off on 429 and 5xx. A record is *known*
when the ledger has a link for it, when an event for it is open (received, queued, processing), or when an
event for it was received after the record's last update (it was seen, whatever came of it: a failed one is
replayed, not re-found). Every other record becomes an event with source "reconcile" (`<kind>.create`) that
goes through process_event and the ledger like a delivery: whichever of the webhook and the reconcile comes
first, Jira is written once.

The watermark moves to the pass's start only after a clean pass (every page listed, every event stored)
that covered every mapped kind from the watermark on (not one narrowed by `kinds`, nor one starting after
it); a failed pass leaves it and records why on the tenant's ReconcileState. `since` (an aware datetime)
starts the pass there instead: on a new tenant it is the backfill of past records. A dry run writes nothing,
in the database or in Jira (only a FreshBooks token refresh, when one is due, is saved: FreshBooks refresh
tokens are single-use): it returns what would be created, with each rendered summary (or worklog target).
"""

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from audit import metrics
from audit.models import Event
from connector import bulk, retry, waiting
from connector.errors import ConnectorError, FreshBooksError, ReconnectRequired
from connector.freshbooks.client import FreshBooksClient
from connector.handlers import Job, worklog_issue
from connector.handlers.issues import choose_mapping
from connector.handlers.job import fetch_related
from connector.jira.client import JiraClient
from connector.kinds import KINDS, build_context
from connector.kinds.base import eastern_to_utc
from connector.models import IssueMapping, Link, ReconcileState, WorklogRule
from connector.render import RenderError, render_fields
from connector.tasks import run_or_enqueue
from tenants.models import JiraSite, Tenant

log = logging.getLogger(__name__)

OVERLAP = timedelta(hours=2)  # FreshBooks' US/Eastern clock: DST folds, skew, records saved mid-pass
BUSY_AFTER = timedelta(hours=1)  # a pass marked running for longer than this died with its worker
OPEN = (Event.Status.RECEIVED, Event.Status.QUEUED, Event.Status.PROCESSING)
TASK = "connector.reconcile.reconcile_task"


class ReconcileBusy(Exception):
    """Another pass of this tenant is running."""


@dataclass
class PassResult:
    tenant: Tenant
    dry_run: bool = False
    ok: bool = True
    listed: int = 0
    known: int = 0
    created: list = field(default_factory=list)  # Events, or on a dry run (event name, object id, what)
    detail: str = ""
    complete: bool = True  # every mapped kind listed from the watermark on: the watermark may move

    def summary(self):
        verb = "would create" if self.dry_run else "created"
        text = (
            f"listed {self.listed} record(s), {self.known} already known, {verb} {len(self.created)} event(s)"
        )
        if not self.ok:
            return f"failed: {self.detail} ({text} before the failure)"
        return text if self.complete else f"{text}; watermark kept (a partial pass)"


def mapped_kinds(tenant):
    """{kind: event name} of what a reconcile looks for: kinds whose `<kind>.create` has an enabled mapping
    (issues, client user matches), and the worklog kind when the tenant has an enabled worklog rule."""
    names = set(IssueMapping.objects.filter(tenant=tenant, enabled=True).values_list("event", flat=True))
    rules = WorklogRule.objects.filter(tenant=tenant, enabled=True).exists()
    return {
        name: f"{name}.create"
        for name, kind in KINDS.items()
        if (rules if kind.writes == "worklog" else f"{name}.create" in names)
    }


def record_updated(kind, record):
    """When FreshBooks last changed the record (aware, UTC), or None when the record does not say."""
    text = record.get("updated") or record.get("updated_at")
    if KINDS[kind].scope != "account" or not text:
        return None
    text = eastern_to_utc(text)  # accounting datetimes are US/Eastern unless they carry an offset
    return datetime.fromisoformat(text) if text else None


def wanted(kind, record):
    """False for records never worth an event: deleted ones and running timers."""
    if str(record.get("vis_state", 0)) == "1":
        return False
    return not (record.get("timer") or {}).get("is_running")


def unknown(tenant, kind, records):
    """The records of one page that no link, open event or later event knows about."""
    ids = [str(record.get("id")) for record in records]
    linked = set(
        Link.objects.filter(tenant=tenant, object_type=kind, object_id__in=ids).values_list(
            "object_id", flat=True
        )
    )
    seen = {}
    events = Event.objects.filter(tenant=tenant, name__startswith=f"{kind}.", object_id__in=ids)
    for object_id, status, received in events.values_list("object_id", "status", "received_at"):
        seen.setdefault(object_id, []).append((status, received))
    found = []
    for record in records:
        object_id, updated = str(record.get("id")), record_updated(kind, record)
        heard = seen.get(object_id, [])
        if object_id in linked or any(
            status in OPEN or updated is None or received >= updated for status, received in heard
        ):
            continue
        found.append(record)
    return found


def list_pages(client, kind, since, sleep):
    """Yield (page, pages, records) for `kind` updated since `since`, backing off on transient errors."""
    page, pages = 1, 1
    while page <= pages:
        for attempt in range(1, retry.LIST_PAGE_TRIES + 1):
            try:
                records, pages = client.list_page(kind, page, updated_since=since)
                break
            except FreshBooksError as exc:
                if not exc.transient or attempt == retry.LIST_PAGE_TRIES:
                    raise
                sleep(retry.call_delay(attempt - 1))
        yield page, pages, records
        page += 1


def describe(job, kind, name, record):
    """What processing the record would write, for a dry run: the rendered summary or the worklog target."""
    declared = KINDS[kind]
    if declared.writes == "worklog":
        issue = worklog_issue(job, record)
        hours = int(float(record.get("duration") or 0)) / 3600
        return f"worklog of {hours:.2f} h on {issue}" if issue else "nothing: no worklog rule matches"
    related = declared.related(lambda other, object_id: fetch_related(job, other, object_id), record)
    context = build_context(
        kind, record, related=related, tenant=job.tenant, account=job.account, event_name=name
    )
    mappings = list(IssueMapping.objects.filter(tenant=job.tenant, enabled=True, event=name))
    mapping = choose_mapping(mappings, context)
    if mapping is None:
        return "nothing: no mapping's condition holds"
    try:
        summary = render_fields(mapping, context, job.site)["summary"]
    except RenderError as exc:
        return f"nothing: mapping “{mapping.name}” does not render ({exc})"
    return f"issue in {mapping.project_key}: “{summary}”"


def create_event(tenant, account, name, record, sync, actor):
    """The event for a record found missing: processed here (sync), or held in the bulk lane (connector.bulk:
    behind live deliveries, tenants in turns, issues created 50 at a time)."""
    object_id = str(record.get("id"))
    event = Event.objects.create(
        source=Event.Source.RECONCILE, tenant=tenant, name=name, object_id=object_id,
        account_id=account.account_id, business_id=account.business_id,
        status=Event.Status.QUEUED if sync else Event.Status.WAITING, wait_reason="" if sync else waiting.BULK,
        status_detail="" if sync else "Waiting for its turn (bulk work)",
        payload={"name": name, "object_id": object_id, "updated": str(record.get("updated") or "")},
    )  # fmt: skip
    if sync:
        run_or_enqueue(event, actor=actor, sync=sync)
    return event


def _start(tenant, actor):
    """Mark the tenant's pass running (refusing a second one); returns its ReconcileState."""
    ReconcileState.objects.get_or_create(tenant=tenant)
    with transaction.atomic():
        state = ReconcileState.objects.select_for_update().get(tenant=tenant)
        now = timezone.now()
        if state.last_result == ReconcileState.Result.RUNNING and state.last_started_at > now - BUSY_AFTER:
            raise ReconcileBusy(
                f"a pass of {tenant.slug} started at {state.last_started_at:%H:%M:%S} is running"
            )
        state.last_result, state.last_started_at, state.last_actor = ReconcileState.Result.RUNNING, now, actor
        state.last_detail = ""
        state.save()
    return state


def _finish(state, result, started):
    state.refresh_from_db(fields=["watermark"])
    if result.ok and result.complete:
        state.watermark = max(filter(None, (state.watermark, started)))
    state.last_result = ReconcileState.Result.OK if result.ok else ReconcileState.Result.FAILED
    state.last_detail, state.last_finished_at = result.summary()[:5000], timezone.now()
    state.save()


def reconcile(tenant, *, since=None, kinds=None, dry_run=False, sync=False, actor="schedule",
              progress=None, sleep=time.sleep):  # fmt: skip
    """One pass for `tenant` (see the module docstring); returns a PassResult.

    `kinds` narrows the mapped kinds; `sync` processes each new event here instead of queueing it;
    `progress(line)` is called after every page. Raises ReconcileBusy when a pass is already running."""
    progress = progress or (lambda line: None)
    result = PassResult(tenant, dry_run=dry_run)
    state = None if dry_run else _start(tenant, actor)
    started = timezone.now()
    try:
        _pass(tenant, result, since, kinds, dry_run, sync, actor, progress, sleep, state)
    except ConnectorError as exc:
        result.ok, result.detail = False, exc.detail
    except Exception as exc:  # a bug: recorded on the tenant's state, then raised
        result.ok, result.detail = False, f"Internal error: {type(exc).__name__}: {exc}"
        if state is not None:
            _finish(state, result, started)
            metrics.reconcile_pass(False, len(result.created))
        raise
    if state is not None:
        _finish(state, result, started)
        metrics.reconcile_pass(result.ok, len(result.created))
    log.info("Reconcile of %s by %s: %s", tenant.slug, actor, result.summary())
    return result


def _pass(tenant, result, since, kinds, dry_run, sync, actor, progress, sleep, state):
    account = tenant.freshbooks_accounts.first()
    if account is None:
        raise ReconnectRequired(f"tenant {tenant.slug} has no FreshBooks account connected")
    site = JiraSite.objects.filter(tenant=tenant).first()
    if site is None:
        raise ReconnectRequired(f"tenant {tenant.slug} has no Jira site connected")
    watermark = state.watermark if state else ReconcileState.objects.filter(tenant=tenant).values_list(
        "watermark", flat=True
    ).first()  # fmt: skip
    start = (watermark or account.created_at) - OVERLAP
    since = since or start
    targets = mapped_kinds(tenant)
    if kinds:
        targets = {kind: name for kind, name in targets.items() if kind in kinds}
    result.complete = since <= start and set(targets) == set(mapped_kinds(tenant))
    fb = FreshBooksClient(account, actor=actor, sleep=sleep)
    job = Job(event=None, tenant=tenant, account=account, site=site, fb=fb,
                       jira=JiraClient(site, actor=actor))  # fmt: skip
    progress(f"{tenant.slug}: listing {', '.join(targets) or 'nothing (no kind is mapped)'} updated since "
             f"{since:%Y-%m-%d %H:%M:%S} UTC")  # fmt: skip
    for kind, name in targets.items():
        for page, pages, records in list_pages(fb, kind, since, sleep):
            records = [record for record in records if wanted(kind, record)]
            new = unknown(tenant, kind, records)
            result.listed += len(records)
            result.known += len(records) - len(new)
            for record in new:
                if dry_run:
                    result.created.append((name, str(record.get("id")), describe(job, kind, name, record)))
                else:
                    result.created.append(create_event(tenant, account, name, record, sync, actor))
            if not dry_run and not sync:
                bulk.feed()
            progress(f"{tenant.slug}: {kind} page {page}/{pages}: {len(records)} listed, {len(new)} new "
                     f"({result.listed} listed, {len(result.created)} new so far)")  # fmt: skip


def reconcile_task(tenant_id, actor="schedule"):
    """django-q2 task: one pass of one tenant; returns its summary (or why it did not run)."""
    tenant = Tenant.objects.filter(pk=tenant_id, active=True).first()
    if tenant is None:
        return "no such active tenant"
    try:
        return reconcile(tenant, actor=actor).summary()
    except ReconcileBusy as exc:
        return f"not run: {exc}"


def reconcile_due():
    """Scheduled every 5 minutes: queue a pass for every active, connected tenant whose interval has
    elapsed since its last pass started. Returns the slugs queued."""
    now, queued = timezone.now(), []
    for tenant in Tenant.objects.filter(active=True, freshbooks_accounts__isnull=False).distinct():
        state, _ = ReconcileState.objects.get_or_create(tenant=tenant)
        interval = timedelta(minutes=max(5, state.interval_minutes))
        if state.enabled and (state.last_started_at is None or state.last_started_at <= now - interval):
            async_task(TASK, tenant.pk, actor="schedule")
            queued.append(tenant.slug)
    return queued
