"""Waiting events: held back on purpose, visible in the admin, resumed by themselves or when released.

An event in status ``waiting`` (audit.Event.Status.WAITING) is not processed and has not failed: it waits

- until ``wait_until`` (an aware datetime, UTC), e.g. Jira's hourly quota is spent until the next reset, or a
  ``Retry-After`` longer than one call may wait: connector.tasks.resume_waiting (scheduled every minute) queues
  it again once that time has passed, whatever the tenant's auto retry setting;
- or, with no ``wait_until``, until something releases it, e.g. a paused tenant is resumed (`release`).

``wait_reason`` is a short text (at most 100 characters) naming what it waits for; the reasons the connector
uses are the constants below. The admin shows `describe(event)`: "waiting for Jira's quota until 14:00 UTC".

Shapes:
- ``wait(event, until=None, reason="", detail="")`` → bool: puts a received, queued, processing or waiting event into
  waiting (one conditional UPDATE; False when the event had already finished, e.g. succeeded meanwhile).
  ``until``: an aware datetime or None. The event instance is updated too.
- ``release_due(now=None, limit=500)`` → list of event ids moved from waiting to queued because their time has
  come (oldest ``wait_until`` first). The caller queues them (connector.tasks.resume_waiting does). Bulk work
  (reason BULK) is left to its own lane, connector.bulk.feed, which releases it in turns.
- ``release(events)`` → list of ids of the waiting events in the ``events`` queryset moved to queued now,
  whatever their time (connector.tasks.resume queues them).

A waiting event counts in neither the queued backlog nor the failures. Processing never claims it
(connector.tasks.claim takes only received and queued events), so a stray queued task for it does nothing.
"""

from datetime import UTC

from django.db.models import Q
from django.utils import timezone

from audit.models import Event

QUOTA = "Jira's quota"  # the hourly points quota (global pool or the tenant's), connector.jira.quota
RETRY_AFTER = "Jira's Retry-After"  # a 429 asking for longer than one call may wait
TENANT_PAUSED = "tenant paused"  # an operator paused the tenant (no until: resumed by hand)
BULK = "its turn (bulk work)"  # reconcile, backfill, bulk replay: released in turns by connector.bulk.feed

# Reasons that name what is awaited read "waiting for Jira's quota"; others "waiting: tenant paused".
AWAITED = (QUOTA, RETRY_AFTER, BULK)
WAITABLE = (Event.Status.RECEIVED, Event.Status.QUEUED, Event.Status.PROCESSING, Event.Status.WAITING)


def describe(event):
    """The waiting state in words, e.g. "waiting for Jira's quota until 14:00 UTC" or "waiting: tenant paused"
    (the date is added when it is not today, UTC); "" when the event is not waiting."""
    if event.status != Event.Status.WAITING:
        return ""
    reason = event.wait_reason or "released"
    text = f"waiting for {reason}" if reason in AWAITED else f"waiting: {reason}"
    if event.wait_until:
        until = event.wait_until.astimezone(UTC)
        same_day = until.date() == timezone.now().astimezone(UTC).date()
        text += f" until {until:%H:%M} UTC" if same_day else f" until {until:%Y-%m-%d %H:%M} UTC"
    return text


def wait(event, until=None, reason="", detail=""):
    """Put `event` into waiting until `until` (aware datetime, or None: until released) for `reason`; its status
    detail says so (`describe`), followed by `detail` when given (e.g. Jira's answer).

    Returns False, changing nothing, when the event is no longer received, queued, processing or waiting.
    """
    reason = (reason or "")[:100]
    updated = Event.objects.filter(pk=event.pk, status__in=WAITABLE).update(
        status=Event.Status.WAITING, wait_until=until, wait_reason=reason, finished_at=None
    )
    if updated:
        event.status, event.wait_until, event.wait_reason, event.finished_at = (
            Event.Status.WAITING,
            until,
            reason,
            None,
        )
        text = describe(event)
        event.status_detail = " — ".join(filter(None, [text[:1].upper() + text[1:], detail]))[:5000]
        Event.objects.filter(pk=event.pk).update(status_detail=event.status_detail)
    return bool(updated)


def _to_queued(ids):
    Event.objects.filter(pk__in=ids, status=Event.Status.WAITING).update(
        status=Event.Status.QUEUED, wait_until=None, wait_reason=""
    )
    return ids


def release_due(now=None, limit=500):
    """Ids of the waiting events whose `wait_until` has passed, now queued (oldest first, at most `limit`)."""
    now = now or timezone.now()
    due = Event.objects.filter(status=Event.Status.WAITING, wait_until__lte=now).exclude(wait_reason=BULK)
    due = due.order_by("wait_until", "id")
    return _to_queued(list(due.values_list("pk", flat=True)[:limit]))


def release(events):
    """Ids of the waiting events of the queryset `events`, now queued whatever their `wait_until`."""
    return _to_queued(list(events.filter(Q(status=Event.Status.WAITING)).values_list("pk", flat=True)))
