"""The idempotency ledger: every Jira write for a FreshBooks object goes through here, so it happens once.

Jira has no idempotency key, so:
1. a `Link` row with a unique key per (tenant, FreshBooks object, purpose) is claimed before the call;
2. the row is locked (SELECT ... FOR UPDATE) for the duration of the Jira call, so a second worker waits
   and then sees the result instead of writing again;
3. the create request carries a deterministic label and an entity property naming the FreshBooks object;
4. an outcome we cannot know (timeout, connection reset, 5xx after sending) leaves the link "in doubt",
   committed; before any later write for it we look in Jira (issues: JQL search on the label, retried
   because search lags behind writes; worklogs: the issue's worklog list with properties) and adopt
   what we find. A link left "pending" by a worker that died mid-call is treated the same way.
5. a rejection (4xx, or no usable OAuth token) of a first attempt releases the claim: nothing was
   written, so a replay starts afresh; after an unknown outcome the link stays in doubt.

Call these functions outside any transaction (the in-doubt state must be committed before the error
propagates). Deleted or rolled-back links are returned unchanged: nothing is re-created for them.
"""

import functools
import logging
import re

from django.db import IntegrityError, transaction

from connector import snapshots
from connector.errors import LedgerError, RefreshDeferred, VendorError
from connector.jira import screens
from connector.models import Link
from connector.retry import SEARCH_RETRY_DELAYS
from connector.transport import open_transaction

log = logging.getLogger(__name__)

PROPERTY_KEY = "ml-connector"
UNSAFE_LABEL_CHARS = re.compile(r"[^A-Za-z0-9_.-]")  # labels are quoted in JQL: keep them plain
__all__ = ["LedgerError", "SEARCH_RETRY_DELAYS"]  # and the functions below


def dedupe_key(tenant, object_type, object_id, purpose):
    return f"{tenant.pk}:{object_type}:{object_id}:{purpose}"


def issue_label(tenant, object_type, object_id):
    """The deterministic label of the issue for a FreshBooks object, e.g. "mlc-acme-invoice-123"."""
    parts = ("mlc", tenant.slug, object_type, object_id)
    return "-".join(UNSAFE_LABEL_CHARS.sub("_", str(part).strip()) for part in parts)


def marker(tenant, object_type, object_id):
    return {"tenant": tenant.slug, "object_type": object_type, "object_id": str(object_id)}


def is_created(link):
    """True when the link's Jira issue or worklog exists as we wrote it (not in doubt, deleted, rolled back)."""
    return link.state == Link.State.CREATED


def issue_link(tenant, object_type, object_id):
    """The link of the object's issue that an update may use: created, or in doubt or pending (resolved in Jira
    before the update); None when there is none (never written, deleted in Jira or rolled back)."""
    usable = [Link.State.CREATED, Link.State.IN_DOUBT, Link.State.PENDING]
    return Link.objects.filter(
        tenant=tenant,
        purpose=Link.Purpose.ISSUE,
        object_type=object_type,
        object_id=str(object_id),
        state__in=usable,
    ).first()


def worklog_link(tenant, time_entry_id):
    """The link of the time entry's worklog unless it was deleted or rolled back, or None."""
    return (
        Link.objects.filter(tenant=tenant, purpose=Link.Purpose.WORKLOG, object_id=str(time_entry_id))
        .exclude(state__in=[Link.State.DELETED, Link.State.ROLLED_BACK])
        .first()
    )


NESTED = "The ledger was called inside a database transaction; Jira writes must run outside one."


class _Durable(transaction.Atomic):
    """transaction.atomic(durable=True): what it holds commits when it ends, never undone by a caller's rollback
    (which would lose an in-doubt state and let a replay write twice). Inside a caller's transaction Django
    refuses to start it; that refusal is a LedgerError here."""

    def __init__(self):
        super().__init__(using=None, savepoint=True, durable=True)

    def __enter__(self):
        try:
            return super().__enter__()
        except RuntimeError as exc:  # Django: "A durable atomic block cannot be nested ..."
            raise LedgerError(NESTED) from exc


def claim(tenant, object_type, object_id, purpose, event=None):
    """The Link for this object and purpose, created (and committed) if missing. Returns (link, claimed_now).

    Two autocommit statements at most (a SELECT, then an INSERT when there is no row; the unique dedupe key
    settles a race between workers). Raises LedgerError inside a caller's transaction, whose rollback would
    undo the claim."""
    if open_transaction():
        raise LedgerError(NESTED)
    key = dedupe_key(tenant, object_type, object_id, purpose)
    link = Link.objects.filter(dedupe_key=key).first()
    if link is not None:
        return link, False
    try:
        return Link.objects.create(
            dedupe_key=key,
            tenant=tenant,
            purpose=purpose,
            object_type=object_type,
            object_id=str(object_id),
            event=event,
        ), True
    except IntegrityError:  # another worker claimed it between the two statements
        return Link.objects.get(dedupe_key=key), False


def _ready(client):
    """Obtain the client's credentials now, outside the locked block: an OAuth token due for refresh is
    refreshed (and committed) here, never inside the block, where a rollback would lose the rotated refresh
    token (tenants.tokens.refresh refuses to run there)."""
    ready = getattr(client, "ready", None)
    if ready is not None:
        ready()


def under_lock(client, block):
    """Run `block()`, a locked block that calls Jira, with the credentials obtained first (`_ready`). When Jira
    answers 401 inside it on an OAuth site (an access token revoked or rotated before its expiry), the refresh
    cannot run there: RefreshDeferred leaves the block (a 401 wrote nothing; the link is released or stays as
    it was), the token is refreshed outside and committed, and `block()` runs once more. Returns its result."""
    _ready(client)
    try:
        return block()
    except RefreshDeferred:
        _ready(client)
        return block()


def _write_once(claim_args, event, find, write, client=None):
    """The locked claim → (adopt or write) → record protocol shared by issues and worklogs.

    `find(link)` looks in Jira for a write already made (returns the Jira ids to store, or None);
    `write(link)` makes it (returns the ids). Ids are a dict of Link fields.
    """
    return under_lock(client, lambda: _write_locked(claim_args, event, find, write))


def _write_locked(claim_args, event, find, write):
    for _ in range(3):
        link, claimed_now = claim(*claim_args, event=event)
        if link.state == Link.State.CREATED:
            return link
        error = None
        with _Durable():
            locked = Link.objects.select_for_update().filter(pk=link.pk).first()
            if locked is None:  # released by a worker whose write was rejected: claim again
                continue
            link = locked
            if link.state in (Link.State.CREATED, Link.State.DELETED, Link.State.ROLLED_BACK):
                return link
            ids = None
            doubtful = link.state == Link.State.IN_DOUBT or not claimed_now
            if doubtful:
                ids = find(link)
                if ids:
                    log.info("Adopted %s for %s after an unknown outcome", ids, link.dedupe_key)
            if not ids:
                try:
                    ids = write(link)
                except VendorError as exc:
                    error = exc
                    if exc.ambiguous:
                        link.state = Link.State.IN_DOUBT
                        link.event = event or link.event
                        link.save()
                    elif not doubtful:
                        link.delete()  # rejected, nothing written: a replay starts afresh without searching
                    # else: an earlier outcome is still unknown; the link stays as it was.
            if ids:
                for name, value in ids.items():
                    setattr(link, name, value)
                link.state = Link.State.CREATED
                link.event = event or link.event
                link.save()
        if error is not None:  # raised after the commit, so the in-doubt state survives
            raise error
        return link
    raise LedgerError(
        f"Could not claim {claim_args[1]} {claim_args[2]}: released repeatedly by other workers."
    )


def _issue_ids(issue):
    return {"jira_issue_id": str(issue.get("id") or ""), "jira_issue_key": issue.get("key") or ""}


def find_issue(client, tenant, object_type, object_id):
    """The issue labelled for this object, searching again while Jira's search index catches up."""
    label = issue_label(tenant, object_type, object_id)
    jql = f'labels = "{label}" ORDER BY created ASC'
    for delay in (0, *SEARCH_RETRY_DELAYS):
        if delay:
            client.sleep(delay)
        issues = client.search_jql(jql, fields=("summary", "labels"), max_results=10)
        issues = [
            issue for issue in issues if label in ((issue.get("fields") or {}).get("labels") or [label])
        ]
        if issues:
            if len(issues) > 1:
                log.warning("%d Jira issues carry label %s; adopting the first", len(issues), label)
            return issues[0]
    return None


def _found_issue_ids(client, tenant, link):
    """The ids of the issue labelled for the link's object, or None."""
    issue = find_issue(client, tenant, link.object_type, link.object_id)
    return _issue_ids(issue) if issue else None


def with_label(fields, label):
    """`fields` with `label` added to its labels (once)."""
    labels = list(fields.get("labels") or [])
    if label not in labels:
        labels.append(label)
    return {**fields, "labels": labels}


def ensure_issue(*, client, tenant, object_type, object_id, fields, event=None, notes=None):
    """The Link (state created) of the issue for this FreshBooks object, creating the issue at most once.
    Optional fields Jira refuses as not on the create screen are left out, with a line in `notes`
    (connector.jira.screens); the issue property still marks the issue."""
    object_id = str(object_id)
    label = issue_label(tenant, object_type, object_id)

    def write(link):
        properties = {PROPERTY_KEY: marker(tenant, object_type, object_id)}
        return _issue_ids(screens.create_issue(client, with_label(fields, label), properties, notes))

    find = functools.partial(_found_issue_ids, client, tenant)
    return _write_once((tenant, object_type, object_id, Link.Purpose.ISSUE), event, find, write, client)


def _resolve(link, find, client=None):
    """Make sure a link that is not `created` is resolved by looking in Jira; raise when nothing is there."""
    if link.state == Link.State.CREATED:
        return link
    if link.state in (Link.State.IN_DOUBT, Link.State.PENDING):
        link = under_lock(client, functools.partial(_resolve_locked, link, find))
        if link.state == Link.State.CREATED:
            return link
    raise LedgerError(
        f"No Jira {link.purpose} for {link.object_type} {link.object_id} ({link.get_state_display()}); "
        "replay the event that creates it."
    )


def _resolve_locked(link, find):
    with _Durable():
        held = Link.objects.select_for_update().filter(pk=link.pk).first()
        if held is None:  # released meanwhile: the create was rejected, nothing is in Jira
            raise LedgerError(
                f"No Jira {link.purpose} for {link.object_type} {link.object_id} (its create was "
                "rejected); replay the event that creates it."
            )
        if held.state != Link.State.CREATED:
            ids = find(held)
            if ids:
                for name, value in ids.items():
                    setattr(held, name, value)
                held.state = Link.State.CREATED
                held.save()
    return held


def update_issue(*, client, link, fields, event=None, notes=None):
    """Edit the linked issue (its ledger label is kept in the labels; optional fields Jira refuses as not on the
    edit screen are left out, with a line in `notes`)."""
    tenant = link.tenant
    link = _resolve(link, functools.partial(_found_issue_ids, client, tenant), client)
    if "labels" in fields:
        fields = with_label(fields, issue_label(tenant, link.object_type, link.object_id))
    fields = {name: value for name, value in fields.items() if name not in ("project", "issuetype")}
    key = link.jira_issue_key or link.jira_issue_id
    before = snapshots.issue_fields(client, key, list(fields)) if client.event else None
    screens.update_issue(client, key, fields, notes)
    snapshots.keep(
        client,
        {"kind": "issue", "key": key, "before": before},
        after=lambda: snapshots.issue_fields(client, key, list(fields)),
    )
    return link


def worklog_marker(tenant, time_entry_id):
    return marker(tenant, "time_entry", time_entry_id)


def find_worklog(client, tenant, issue_key, time_entry_id):
    """The worklog on `issue_key` whose ml-connector property names this time entry."""
    wanted = worklog_marker(tenant, time_entry_id)
    for worklog in client.list_worklogs(issue_key):
        for prop in worklog.get("properties") or []:
            value = prop.get("value")
            if (
                prop.get("key") == PROPERTY_KEY
                and isinstance(value, dict)
                and all(str(value.get(name)) == wanted[name] for name in wanted)
            ):
                return worklog
    return None


def ensure_worklog(*, client, tenant, time_entry_id, issue_key, body, event=None):
    """The Link (state created) of the worklog for this time entry on `issue_key`, added at most once."""
    time_entry_id = str(time_entry_id)

    def find(link):
        worklog = find_worklog(client, tenant, issue_key, time_entry_id)
        return {"jira_worklog_id": str(worklog["id"]), "jira_issue_key": issue_key} if worklog else None

    def write(link):
        link.jira_issue_key = issue_key  # kept when in doubt: the resolution looks at this issue
        created = client.add_worklog(
            issue_key, body, properties={PROPERTY_KEY: worklog_marker(tenant, time_entry_id)}
        )
        return {
            "jira_worklog_id": str(created["id"]),
            "jira_issue_key": issue_key,
            "jira_issue_id": str(created.get("issueId") or ""),
        }

    return _write_once(
        (tenant, "time_entry", time_entry_id, Link.Purpose.WORKLOG), event, find, write, client
    )


def _find_linked_worklog(client, link):
    if not link.jira_issue_key:
        return None
    worklog = find_worklog(client, link.tenant, link.jira_issue_key, link.object_id)
    return {"jira_worklog_id": str(worklog["id"])} if worklog else None


def update_worklog(*, client, link, body, event=None):
    link = _resolve(link, lambda lk: _find_linked_worklog(client, lk), client)
    key, worklog_id = link.jira_issue_key, link.jira_worklog_id
    before = snapshots.worklog_fields(client, key, worklog_id) if client.event else None
    client.update_worklog(key, worklog_id, body)
    snapshots.keep(
        client,
        {"kind": "worklog", "key": key, "worklog_id": worklog_id, "before": before},
        after=lambda: snapshots.worklog_fields(client, key, worklog_id),
    )
    return link


def delete_worklog(*, client, link, event=None):
    """Delete the linked worklog (already gone in Jira is fine); the link ends in state deleted."""
    if link.state in (Link.State.DELETED, Link.State.ROLLED_BACK):
        return link
    try:
        link = _resolve(link, lambda lk: _find_linked_worklog(client, lk), client)
    except LedgerError:
        pass  # never written: nothing to delete
    else:
        key, worklog_id = link.jira_issue_key, link.jira_worklog_id
        before = snapshots.worklog_fields(client, key, worklog_id) if client.event else None
        if client.delete_worklog(key, worklog_id) and before:
            snapshots.keep(
                client,
                {
                    "kind": "worklog_delete",
                    "key": key,
                    "worklog_id": worklog_id,
                    "time_entry": link.object_id,
                    "before": before,
                },
            )
    link.state = Link.State.DELETED
    link.event = event or link.event
    if Link.objects.filter(pk=link.pk).exists():  # a rejected create released it: nothing to record
        link.save(update_fields=["state", "event", "updated_at"])
    return link
