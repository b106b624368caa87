"""Rollback: undo in Jira what one stored event's processing did.

What it created: every Link whose `event` is the event and whose state is created is undone through the
ledger (`connector.ledger_undo.rollback_link`): its worklog or issue is deleted in Jira (already gone counts as
removed) and the link becomes rolled_back, so no replay or later delivery re-creates it. When people have
changed it in Jira since (`created_changes`: an issue renamed, worked on, given sub-tasks; a worklog edited),
nothing is deleted and RollbackConflict lists the changes; confirmed (`overwrite=True`), an issue is deleted
with its sub-tasks (`deleteSubtasks=true`).
What it changed: every write that kept the values it overwrote (connector.snapshots, on the event's
attempts) is undone, newest first: an issue's fields and a worklog are put back as they were, a deleted
worklog is re-created (its link is created again). When Jira no longer holds what the connector wrote (the
issue or worklog was changed there since), nothing is written and RollbackConflict lists the differences;
the operator may then confirm with `overwrite=True`.

The event ends rolled_back with a detail naming what was undone; the Jira calls are recorded as Attempts
with the actor. A Jira failure leaves the event's status as it was, with the reason in its detail, and
raises RollbackFailed.

Where it runs: `rollback` holds each link's row lock while Jira answers (connector.ledger), so it runs in the
worker or a command, never in a web request (connector.transport.guard_transaction refuses it there). The admin
and the API call `queue`: the read-only checks (`check`: refusal, then Jira's changes, GETs outside any
transaction) in the request, then `rollback_task` in the worker, which checks again and writes.
"""

import json

from django.db import transaction

from audit.models import Event
from config.queueing import enqueue
from connector import ledger, ledger_undo, snapshots
from connector.errors import ConnectorError
from connector.jira.client import JiraClient
from connector.models import Link
from connector.schedules import ROLLBACK
from tenants.models import JiraSite


class RollbackError(Exception):
    pass


class RollbackRefused(RollbackError):
    """Nothing was done (nothing to undo, or the event is busy)."""


class RollbackFailed(RollbackError):
    """Jira refused or could not be reached; the event keeps its status."""


class RollbackConflict(RollbackRefused):
    """Jira was changed since the connector's write: `differences` is [(what, field, ours, now in Jira)]."""

    def __init__(self, differences):
        self.differences = differences
        self.changed = "; ".join(f"{what} {name}" for what, name, _, _ in differences)
        super().__init__(
            f"changed in Jira since the connector's write ({self.changed}): confirm to overwrite"
        )


def created_links(event):
    """The links this event created that are still in Jira as far as we know (worklogs first)."""
    return list(
        Link.objects.filter(event=event, state=Link.State.CREATED).order_by("-purpose", "id")
    )  # "worklog" sorts after "issue": descending puts worklogs first


def kept_writes(event):
    """The event's writes that kept what they overwrote, newest first (the order they are undone in)."""
    return [
        attempt.previous
        # `previous` is encrypted (no SQL lookups): only PUT and DELETE attempts can carry it.
        for attempt in event.attempt_set.filter(action__regex=r"^(PUT|DELETE) ").order_by("-id")
        if isinstance(attempt.previous, dict) and attempt.previous.get("before") is not None
    ]


def describe_undo(previous, done=True):
    """What undoing one kept write does (done: "restored summary, labels of FIN-1"; to do: "restores …")."""
    verb = ("restored", "re-created") if done else ("restores", "re-creates")
    if previous["kind"] == "issue":
        return f"{verb[0]} {', '.join(previous['before'])} of {previous['key']}"
    if previous["kind"] == "worklog":
        return f"{verb[0]} worklog {previous['worklog_id']} on {previous['key']}"
    return f"{verb[1]} the deleted worklog on {previous['key']}"


def plan(event):
    """What a rollback of `event` would do, one line per write (for the confirmation pages)."""
    links = created_links(event)
    if links:
        return [f"deletes {ledger_undo.describe(link)}" for link in links]
    return [describe_undo(previous, done=False) for previous in kept_writes(event)]


def refusal(event):
    """Why `event` cannot be rolled back now, or ""."""
    if event.status == Event.Status.PROCESSING and not event.is_stale:
        return "it is being processed right now"
    if event.status == Event.Status.ROLLED_BACK:
        return "it is already rolled back"
    if not created_links(event) and not kept_writes(event) and event.pruned_at:
        return f"nothing to undo: what it overwrote was removed by retention on {event.pruned_at:%Y-%m-%d}"
    if not created_links(event) and not kept_writes(event):
        return "nothing to undo: it created or changed no Jira issue or worklog that is still linked"
    if not JiraSite.objects.filter(tenant_id=event.tenant_id).exists():
        return "its tenant has no Jira site connected"
    return ""


def _client(event, actor):
    return JiraClient(JiraSite.objects.filter(tenant_id=event.tenant_id).first(), event=event, actor=actor)


def changes(event, client):
    """What people changed in Jira since the event's writes, as RollbackConflict differences (Jira GETs only)."""
    links = created_links(event)
    if links:
        return [diff for link in links for diff in created_changes(client, link)]
    return _conflicts(client, kept_writes(event))


def check(event, actor, *, overwrite=False):
    """The web request's part of a rollback: read-only (Jira GETs, recorded as attempts with `actor`), outside any
    transaction. Raises RollbackRefused when it cannot run now, RollbackConflict when Jira was changed since the
    connector's writes (not checked with `overwrite`), RollbackFailed when Jira could not be asked."""
    reason = refusal(event)
    if reason:
        raise RollbackRefused(reason)
    if overwrite:
        return
    try:
        found = changes(event, _client(event, actor))
    except ConnectorError as exc:
        raise RollbackFailed(f"could not compare with Jira: {exc}") from exc
    if found:
        raise RollbackConflict(found)


def queue(event, actor, *, overwrite=False):
    """`check`, then queue the rollback for the worker (`rollback_task`): the event's detail says so until the
    worker replaces it with the outcome. Raises as `check` does (nothing queued). For web requests."""
    check(event, actor, overwrite=overwrite)
    with transaction.atomic():
        _save(event, None, f"Rollback requested by {actor}: queued for the worker.")
        enqueue(ROLLBACK, event.pk, actor=actor, overwrite=overwrite, on_commit=True)


def rollback_task(event_id, actor, overwrite=False):
    """The worker's rollback of one event queued by `queue`: `rollback` from the start (things may have changed
    since the request). The outcome is on the event: rolled back, or its detail says why not — changed in Jira
    since the request (nothing is written without the operator's confirmation), refused, or Jira failed.
    Returns that detail."""
    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        return "the event no longer exists"
    try:
        rollback(event, actor, overwrite=overwrite)
    except RollbackConflict as exc:
        _save(
            event,
            None,
            f"Not rolled back: {exc.changed} changed in Jira after {actor} asked; nothing was overwritten. "
            "Roll back again to see the changes and confirm the overwrite.",
        )
    except RollbackRefused as exc:
        if event.status != Event.Status.ROLLED_BACK:  # asked twice: the first rollback's detail stays
            _save(event, None, f"Not rolled back (asked by {actor}): {exc}.")
    except RollbackFailed:
        pass  # its reason is on the event already
    return event.status_detail


def rollback(event, actor, *, overwrite=False):
    """Undo the event's Jira writes; returns what was undone, e.g. ["deleted issue FIN-1"] or
    ["restored summary, labels of FIN-1"]. Holds the ledger's row locks while Jira answers: call it in the
    worker or a command (web requests `queue` it).
    Raises RollbackRefused (RollbackConflict: changed in Jira since, unless `overwrite`) or RollbackFailed."""
    reason = refusal(event)
    if reason:
        raise RollbackRefused(reason)
    client = _client(event, actor)
    if not created_links(event):
        return _undo_changes(event, client, actor, overwrite)
    if not overwrite:
        try:
            changed = changes(event, client)
        except ConnectorError as exc:
            detail = f"Rollback by {actor} failed: could not compare with Jira: {exc}"
            _save(event, None, detail)
            raise RollbackFailed(detail) from exc
        if changed:
            raise RollbackConflict(changed)
    removed = []
    for link in created_links(event):
        try:
            _, deleted = ledger_undo.rollback_link(
                client=client, link=link, event=event, delete_subtasks=overwrite
            )
        except ConnectorError as exc:
            done = f" (already: {', '.join(removed)})" if removed else ""
            detail = f"Rollback by {actor} failed at {ledger_undo.describe(link)}: {exc}{done}"
            _save(event, None, detail)
            raise RollbackFailed(detail) from exc
        removed.append(
            f"deleted {ledger_undo.describe(link)}" + ("" if deleted else " (already gone from Jira)")
        )
    _save(event, Event.Status.ROLLED_BACK, f"Rolled back by {actor}: {', '.join(removed)}.")
    return removed


def _created(link):
    """(what the connector sent, Jira's answer) of the create that made the link's issue or worklog, from the
    event's audit trail; (None, None) when it is no longer there (pruned by retention)."""
    wanted = link.jira_worklog_id if link.purpose == Link.Purpose.WORKLOG else link.jira_issue_id
    for attempt in link.event.attempt_set.filter(action__startswith="POST ", http_status=201).order_by("-id"):
        try:
            answer = json.loads(attempt.response or "{}")
        except ValueError:
            continue
        if isinstance(answer, dict) and str(answer.get("id")) == str(wanted):
            return (attempt.request or {}).get("json") or {}, answer
    return None, None


def created_changes(client, link):
    """What people changed in Jira on what the link's create made, as RollbackConflict differences
    [(object, what, the connector's, now in Jira)]: an issue renamed, work logged on it by people (worklogs
    without the connector's property), sub-tasks added (deleted with it when confirmed); a worklog edited.
    Nothing for what Jira no longer has."""
    if link.event is None:
        return []
    sent, _ = _created(link)
    if link.purpose == Link.Purpose.WORKLOG:
        what = f"worklog {link.jira_worklog_id} on {link.jira_issue_key}"
        now = snapshots.worklog_fields(client, link.jira_issue_key, link.jira_worklog_id)
        ours = {name: sent[name] for name in snapshots.WORKLOG_FIELDS if sent and sent.get(name) is not None}
        return (
            [(what, *diff) for diff in snapshots.differences(ours, now)] if now is not None and sent else []
        )
    key = link.jira_issue_key or link.jira_issue_id
    issue = client.get_issue(key, fields=("summary", "subtasks"))
    if issue is None:
        return []
    fields, found = issue.get("fields") or {}, []
    summary = ((sent or {}).get("fields") or {}).get("summary")
    if summary is not None and fields.get("summary") != summary:
        found.append((key, "summary", summary, fields.get("summary")))
    theirs = [w for w in client.list_worklogs(key) if not _ours(w)]
    if theirs:
        hours = sum(int(w.get("timeSpentSeconds") or 0) for w in theirs) / 3600
        found.append(
            (key, "worklogs", "none", f"{len(theirs)} logged in Jira ({hours:.2f} h), deleted with it")
        )
    subtasks = [s.get("key") for s in fields.get("subtasks") or [] if isinstance(s, dict)]
    if subtasks:
        found.append((key, "sub-tasks", "none", f"{', '.join(subtasks)}, deleted with it"))
    return found


def _ours(worklog):
    return any(
        p.get("key") == ledger.PROPERTY_KEY for p in worklog.get("properties") or [] if isinstance(p, dict)
    )


def _save(event, status, detail):
    with transaction.atomic():
        locked = Event.objects.select_for_update().get(pk=event.pk)
        locked.status = status or locked.status
        locked.status_detail = detail[:5000]
        locked.save(update_fields=["status", "status_detail"])
    event.status, event.status_detail = locked.status, locked.status_detail


def _now(client, previous):
    """What Jira holds now for a kept write (same shape as its "after"), or None when it is gone."""
    if previous["kind"] == "issue":
        return snapshots.issue_fields(client, previous["key"], list(previous["after"] or previous["before"]))
    return snapshots.worklog_fields(client, previous["key"], previous["worklog_id"])


def target(previous):
    """The Jira object of a kept write, e.g. "FIN-1" or "worklog 10001 on FIN-7"."""
    if previous["kind"] == "issue":
        return previous["key"]
    return f"worklog {previous['worklog_id']} on {previous['key']}"


def _conflicts(client, writes):
    """[(object, field, ours, now in Jira)]: checked once per object, against the newest write to it."""
    found, checked = [], set()
    for previous in writes:
        what = target(previous)
        if what in checked:
            continue
        checked.add(what)
        if previous["kind"] == "worklog_delete":
            if _deleted_worklog_link(previous) is None:
                found.append((what, "(link)", "deleted", "re-created or rolled back since"))
            elif client.get_issue(previous["key"]) is None:
                found.append((what, "(issue)", previous["key"], "deleted in Jira"))
            continue
        now = _now(client, previous)
        found += [(what, *diff) for diff in snapshots.differences(previous.get("after") or {}, now)]
    return found


def _deleted_worklog_link(previous):
    return Link.objects.filter(
        purpose=Link.Purpose.WORKLOG,
        object_type="time_entry",
        object_id=previous["time_entry"],
        jira_issue_key=previous["key"],
        state=Link.State.DELETED,
    ).first()


def _undo_changes(event, client, actor, overwrite):
    writes = kept_writes(event)
    done = []
    try:
        conflicts = _conflicts(client, writes)
        if conflicts and not overwrite:
            raise RollbackConflict(conflicts)
        for previous in writes:
            if previous["kind"] == "issue":
                client.update_issue(previous["key"], snapshots.restorable_issue_fields(previous["before"]))
            elif previous["kind"] == "worklog":
                client.update_worklog(previous["key"], previous["worklog_id"], previous["before"])
            else:
                link = _deleted_worklog_link(previous)
                if link is not None:
                    ledger_undo.restore_worklog(
                        client=client, link=link, body=previous["before"], event=event
                    )
            done.append(describe_undo(previous))
    except ConnectorError as exc:
        so_far = f" (already done: {'; '.join(done)})" if done else ""
        detail = f"Rollback by {actor} failed: {exc}{so_far}"
        _save(event, None, detail)
        raise RollbackFailed(detail) from exc
    forced = " over changes made in Jira since" if conflicts else ""
    _save(event, Event.Status.ROLLED_BACK, f"Rolled back by {actor}{forced}: {', '.join(done)}.")
    return done
