"""Repeated FreshBooks deliveries: a captured replay adds nothing, a genuine repeated edit is not dropped.

FreshBooks sends no delivery id, and signs only the form fields (name, object id, account, user): the same user
editing the same invoice twice produces two identical signed deliveries. So an identical delivery received
within WEBHOOK_REPLAY_WINDOW of an earlier one is:
- a replay (acknowledged, nothing stored, nothing processed) while that earlier delivery is still open
  (received, queued, processing, waiting; or a duplicate folded into an event still open for the object);
- a repeat once it has run: stored and processed, and processing re-reads the record from FreshBooks and
  skips it only when what it fetched equals what the earlier event fetched (`unchanged_since`).
"""

from audit.models import Event

OPEN = tuple(
    status
    for status in (Event.Status.RECEIVED, Event.Status.QUEUED, Event.Status.PROCESSING, "waiting")
    if status in Event.Status.values
)
# An earlier event whose effects are in Jira (or that needed none): a repeat equal to it changes nothing.
APPLIED = (Event.Status.SUCCEEDED, Event.Status.SKIPPED)


def replay_of(open_id, newest_id, newest_status):
    """The id of the earlier event a delivery replays, or None when it is to be stored (a repeat, or new).

    `open_id`: an event for the same object still open (or None); `newest_id`, `newest_status`: the newest
    event with the same signed body within the replay window (or None)."""
    if newest_id is None:
        return None
    if newest_status in OPEN or (newest_status == Event.Status.DUPLICATE and open_id is not None):
        return newest_id
    return None


def unchanged_since(event, records):
    """The earlier event of the same signed delivery that fetched exactly `records` (the record and its related
    records) and was applied, or None: then this repeat has something new (or no earlier one to compare)."""
    if not getattr(event, "body_hash", "") or event.pk is None:
        return None
    earlier = (
        Event.objects.filter(
            tenant_id=event.tenant_id, body_hash=event.body_hash, status__in=APPLIED, pk__lt=event.pk
        )
        .order_by("-pk")
        .first()
    )
    return earlier if earlier is not None and earlier.record == records else None
