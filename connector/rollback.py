"""Rollback: undo in Jira what one stored event's processing created.

Every Link whose `event` is the event and whose state is created is undone through the ledger
(`connector.ledger.rollback_link`): its worklog or issue is deleted in Jira (already gone counts as removed)
and the link becomes rolled_back, so no replay or later delivery re-creates it. The event ends rolled_back
with a detail naming what was removed; the Jira calls are recorded as Attempts with the actor.
A Jira failure leaves the event's status as it was, with the reason in its detail, and raises RollbackFailed.
"""

from django.db import transaction

from audit.models import Event
from connector import ledger
from connector.errors import ConnectorError
from connector.jira.client import JiraClient
from connector.models import Link
from tenants.models import JiraSite


class RollbackError(Exception):
    pass


class RollbackRefused(RollbackError):
    """Nothing was done (nothing to undo, or the event is busy)."""


class RollbackFailed(RollbackError):
    """Jira refused or could not be reached; the event keeps its status."""


def created_links(event):
    """The links this event created that are still in Jira as far as we know (worklogs first)."""
    return list(
        Link.objects.filter(event=event, state=Link.State.CREATED).order_by("-purpose", "id")
    )  # "worklog" sorts after "issue": descending puts worklogs first


def refusal(event):
    """Why `event` cannot be rolled back now, or ""."""
    if event.status == Event.Status.PROCESSING and not event.is_stale:
        return "it is being processed right now"
    if not created_links(event):
        if event.status == Event.Status.ROLLED_BACK:
            return "it is already rolled back"
        return "nothing to undo: it created no Jira issue or worklog that is still linked"
    if not JiraSite.objects.filter(tenant_id=event.tenant_id).exists():
        return "its tenant has no Jira site connected"
    return ""


def rollback(event, actor):
    """Undo the event's Jira writes; returns the list of what was removed, e.g. ["issue FIN-1"]."""
    reason = refusal(event)
    if reason:
        raise RollbackRefused(reason)
    client = JiraClient(JiraSite.objects.filter(tenant_id=event.tenant_id).first(), event=event, actor=actor)
    removed = []
    for link in created_links(event):
        try:
            _, deleted = ledger.rollback_link(client=client, link=link, event=event)
        except ConnectorError as exc:
            done = f" (already removed: {', '.join(removed)})" if removed else ""
            detail = f"Rollback by {actor} failed at {ledger.describe(link)}: {exc}{done}"
            _save(event, None, detail)
            raise RollbackFailed(detail) from exc
        removed.append(ledger.describe(link) + ("" if deleted else " (already gone from Jira)"))
    _save(event, Event.Status.ROLLED_BACK, f"Rolled back by {actor}: deleted {', '.join(removed)}.")
    return removed


def _save(event, status, detail):
    with transaction.atomic():
        locked = Event.objects.select_for_update().get(pk=event.pk)
        locked.status = status or locked.status
        locked.status_detail = detail[:5000]
        locked.save(update_fields=["status", "status_detail"])
    event.status, event.status_detail = locked.status, locked.status_detail
