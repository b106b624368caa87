"""Reconcile and backfill: find the FreshBooks records whose webhook deliveries were lost, and process them.

FreshBooks does not promise delivery, so a pass lists, for every kind the tenant maps (an enabled issue
mapping on `<kind>.create` or `<kind>.update`; time entries when an enabled worklog rule exists), the records
updated since the tenant's watermark minus OVERLAP (accounting lists filtered on `updated`, US/Eastern; time
entries by business on `updated_since`, UTC), MAX_PER_PAGE at a time, backing off on 429 and 5xx. A record is
*known* when an event for it is open (received, queued, processing), when an event for it was received after
the record's last update (it was seen, whatever came of it: a failed one is replayed, not re-found), or when
the record the newest processed event for it fetched is as new as the listed one (`record_state`: the update
time; for time entries, which carry none, the fields the worklog is written from, so an entry first seen with
its timer running is found again once it stops). An unknown record without a link becomes a `<kind>.create`
event; one with a link a `<kind>.update` event when an enabled mapping or worklog rule wants updates (records
whose issue or worklog was deleted or rolled back are left alone). Events have source "reconcile" and go
through process_event and the ledger like a delivery: whichever of the webhook and the reconcile comes first,
Jira is written once.

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

from audit import metrics
from audit.models import Event
from config.queueing import enqueue
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
from connector.schedules import RECONCILE
from connector.tasks import run_or_enqueue
from tenants.models import JiraSite, Tenant

log = logging.getLogger(__name__)

OVERLAP = timedelta(hours=2)  # FreshBooks' US/Eastern clock: DST folds, skew, records saved mid-pass
BUSY_AFTER = timedelta(hours=1)  # a pass marked running for longer than this died with its worker
OPEN = (Event.Status.RECEIVED, Event.Status.QUEUED, Event.Status.PROCESSING)
PROCESSED = (Event.Status.SUCCEEDED, Event.Status.SKIPPED)
GONE = (Link.State.DELETED, Link.State.ROLLED_BACK)


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
    """{kind: event name} of what a reconcile creates: kinds whose `<kind>.create` has an enabled mapping
    (issues, client user matches), and the worklog kind when the tenant has an enabled worklog rule."""
    names = set(IssueMapping.objects.filter(tenant=tenant, enabled=True).values_list("event", flat=True))
    rules = WorklogRule.objects.filter(tenant=tenant, enabled=True).exists()
    return {
        name: f"{name}.create"
        for name, kind in KINDS.items()
        if (rules if kind.writes == "worklog" else f"{name}.create" in names)
    }


def updated_kinds(tenant):
    """{kind: event name} of the updates a reconcile looks for: kinds whose `<kind>.update` has an enabled
    mapping, and time entries when an enabled worklog rule exists (their updates move the worklog)."""
    names = set(IssueMapping.objects.filter(tenant=tenant, enabled=True).values_list("event", flat=True))
    rules = WorklogRule.objects.filter(tenant=tenant, enabled=True).exists()
    return {
        name: f"{name}.update"
        for name, kind in KINDS.items()
        if (rules if kind.writes == "worklog" else f"{name}.update" in names)
    }


def record_updated(kind, record):
    """When FreshBooks last changed the record (aware, UTC), or None when the record does not say (time
    entries carry no update time)."""
    text = record.get("updated") or record.get("updated_at")
    if KINDS[kind].scope != "account" or not text:
        return None
    text = eastern_to_utc(text)  # accounting datetimes are US/Eastern unless they carry an offset
    return datetime.fromisoformat(text) if text else None


# What a time entry's worklog is written from: a change in any of them is a change to sync.
ENTRY_STATE = ("duration", "started_at", "note", "project_id", "client_id", "service_id", "active")


def record_state(kind, record):
    """What to compare a listed record with its last processed state by: its update time (accounting
    records), or the fields its worklog is written from (time entries, whose timer may have been running)."""
    if KINDS[kind].scope == "account":
        return record_updated(kind, record)
    running = bool((record.get("timer") or {}).get("is_running"))
    return (*(str(record.get(name)) for name in ENTRY_STATE), running)


def wanted(kind, record):
    """False for records never worth an event: deleted ones and running timers."""
    if str(record.get("vis_state", 0)) == "1":
        return False
    return not (record.get("timer") or {}).get("is_running")


def _processed_state(kind, event_ids):
    """The state (record_state) of the record the newest processed event among `event_ids` fetched, or None
    (no such event, or its record is gone: pruned by retention)."""
    done = Event.objects.filter(pk__in=event_ids, status__in=PROCESSED).order_by("-id").first()
    fetched = (done.record or {}).get(kind) if done is not None and isinstance(done.record, dict) else None
    return record_state(kind, fetched) if isinstance(fetched, dict) else None


def missed(tenant, kind, records, create, update):
    """[(record, event name)] of one page: records no link, open event or later event knows about become
    `create`; linked records whose last processed state is older than the listed one become `update` (when
    not None). Records linked to an issue or worklog deleted or rolled back are left alone."""
    ids = [str(record.get("id")) for record in records]
    links = dict(
        Link.objects.filter(tenant=tenant, object_type=kind, object_id__in=ids).values_list(
            "object_id", "state"
        )
    )
    seen = {}
    events = Event.objects.filter(tenant=tenant, name__startswith=f"{kind}.", object_id__in=ids)
    for pk, object_id, status, received in events.values_list("pk", "object_id", "status", "received_at"):
        seen.setdefault(object_id, []).append((pk, status, received))
    found = []
    for record in records:
        object_id, updated = str(record.get("id")), record_updated(kind, record)
        heard = seen.get(object_id, [])
        if any(status in OPEN for _, status, _ in heard) or links.get(object_id) in GONE:
            continue
        if updated is not None and any(received >= updated for _, _, received in heard):
            continue  # seen since its last change, whatever came of it (a failed one is replayed, not re-found)
        name = update if object_id in links else create
        if name is None:
            continue
        if heard:
            processed = _processed_state(kind, [pk for pk, _, _ in heard])
            listed = record_state(kind, record)
            if processed is None and updated is None:
                continue  # nothing to compare with: heard of, so known
            if processed is not None and (processed == listed if updated is None else processed >= listed):
                continue
        found.append((record, name))
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
        source=Event.Source.RECONCILE,
        tenant=tenant,
        name=name,
        object_id=object_id,
        account_id=account.account_id,
        business_id=account.business_id,
        status=Event.Status.QUEUED if sync else Event.Status.WAITING,
        wait_reason="" if sync else waiting.BULK,
        status_detail="" if sync else "Waiting for its turn (bulk work)",
        payload={"name": name, "object_id": object_id, "updated": str(record.get("updated") or "")},
    )
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


def reconcile(
    tenant,
    *,
    since=None,
    kinds=None,
    dry_run=False,
    sync=False,
    actor="schedule",
    progress=None,
    sleep=time.sleep,
):
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
    watermark = (
        state.watermark
        if state
        else ReconcileState.objects.filter(tenant=tenant).values_list("watermark", flat=True).first()
    )
    start = (watermark or account.created_at) - OVERLAP
    since = since or start
    creates, updates = mapped_kinds(tenant), updated_kinds(tenant)
    targets = {
        kind: (creates.get(kind), updates.get(kind)) for kind in KINDS if kind in creates or kind in updates
    }
    if kinds:
        targets = {kind: names for kind, names in targets.items() if kind in kinds}
    result.complete = since <= start and set(targets) == set(creates) | set(updates)
    fb = FreshBooksClient(account, actor=actor, sleep=sleep)
    job = Job(
        event=None, tenant=tenant, account=account, site=site, fb=fb, jira=JiraClient(site, actor=actor)
    )
    progress(
        f"{tenant.slug}: listing {', '.join(targets) or 'nothing (no kind is mapped)'} updated since "
        f"{since:%Y-%m-%d %H:%M:%S} UTC"
    )
    for kind, (create, update) in targets.items():
        for page, pages, records in list_pages(fb, kind, since, sleep):
            records = [record for record in records if wanted(kind, record)]
            new = missed(tenant, kind, records, create, update)
            result.listed += len(records)
            result.known += len(records) - len(new)
            for record, name in new:
                if dry_run:
                    result.created.append((name, str(record.get("id")), describe(job, kind, name, record)))
                else:
                    result.created.append(create_event(tenant, account, name, record, sync, actor))
            if not dry_run and not sync:
                bulk.feed()
            progress(
                f"{tenant.slug}: {kind} page {page}/{pages}: {len(records)} listed, {len(new)} new "
                f"({result.listed} listed, {len(result.created)} new so far)"
            )


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
            enqueue(RECONCILE, tenant.pk, actor="schedule")
            queued.append(tenant.slug)
    return queued
