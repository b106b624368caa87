"""The ledger's side of a rollback (connector.rollback): undo a created link in Jira, or re-create a worklog
that a rolled-back time_entry.delete removed; each under the link's row lock, like every ledger write (so in
the worker, never in a web request: connector.transport.guard_transaction)."""

from connector.errors import LedgerError, VendorError
from connector.ledger import PROPERTY_KEY, _Durable, find_worklog, under_lock, worklog_marker
from connector.models import Link


def describe(link):
    """What a link stands for in Jira, e.g. "issue FIN-1" or "worklog 10001 on FIN-7"."""
    if link.purpose == Link.Purpose.WORKLOG:
        return f"worklog {link.jira_worklog_id} on {link.jira_issue_key}"
    return f"issue {link.jira_issue_key or link.jira_issue_id}"


def restore_worklog(*, client, link, body, event=None):
    """Re-create the deleted worklog of a time entry (a rollback of its time_entry.delete) under the
    link's row lock, marked like any worklog we add; the link is created again. Returns the link.
    A worklog for the entry already in Jira (found by its property) is adopted instead."""
    return under_lock(client, lambda: _restore_locked(client, link, body, event))


def _restore_locked(client, link, body, event):
    with _Durable():
        link = Link.objects.select_for_update().get(pk=link.pk)
        if link.state != Link.State.DELETED:
            raise LedgerError(f"{describe(link)} is {link.get_state_display().lower()}: nothing to re-create")
        found = find_worklog(client, link.tenant, link.jira_issue_key, link.object_id)
        if found is None:
            found = client.add_worklog(
                link.jira_issue_key,
                body,
                properties={PROPERTY_KEY: worklog_marker(link.tenant, link.object_id)},
            )
        link.jira_worklog_id, link.state = str(found["id"]), Link.State.CREATED
        link.event = event or link.event
        link.save(update_fields=["jira_worklog_id", "state", "event", "updated_at"])
    return link


def rollback_link(*, client, link, event=None, delete_subtasks=False):
    """Undo a created link: delete its issue or worklog in Jira under the link's row lock; the link ends
    rolled_back (never re-created). Returns (link, removed): removed is False when Jira had it no more.
    `delete_subtasks`: an issue's sub-tasks go with it (else Jira refuses to delete an issue that has some).
    A Jira failure raises with the link unchanged; a link no longer `created` raises LedgerError."""
    return under_lock(client, lambda: _rollback_locked(client, link, event, delete_subtasks))


def _rollback_locked(client, link, event, delete_subtasks):
    with _Durable():
        locked = Link.objects.select_for_update().filter(pk=link.pk).first()
        if locked is None or locked.state != Link.State.CREATED:
            state = "released" if locked is None else locked.get_state_display().lower()
            raise LedgerError(f"{describe(link)} is {state} now: nothing to roll back")
        link = locked
        try:
            if link.purpose == Link.Purpose.WORKLOG:
                removed = client.delete_worklog(link.jira_issue_key, link.jira_worklog_id)
            else:
                removed = client.delete_issue(link.jira_issue_key or link.jira_issue_id, delete_subtasks)
        except VendorError as exc:
            error = exc  # raised after the commit, so the failed attempt stays in the audit trail
        else:
            error = None
            link.state = Link.State.ROLLED_BACK
            link.event = event or link.event
            link.save(update_fields=["state", "event", "updated_at"])
    if error is not None:
        raise error
    return link, removed
