"""Triage of failed events: resolve without retry (with a note) and assign to a staff member.

- `resolve(events, actor=..., note=...)`: the failed events of the queryset become "Resolved without retry"
  (audit.Event.Status.RESOLVED): they leave the Failed events list and the failure counts, keep their detail,
  and can still be replayed. Returns how many were resolved. `note` is required (why no retry is needed).
- `assign(events, user)`: sets (or with None clears) who looks into them; returns how many events.
Both are single UPDATEs whatever the number of events (a whole reason group at once).
"""

from django.utils import timezone

from audit.models import Event

MAX_NOTE = 2000


class TriageError(ValueError):
    """A refused triage request (a missing note, a user who is not active staff); its text is shown as is."""


def resolve(events, *, actor, note):
    note = (note or "").strip()
    if not note:
        raise TriageError("Say why these failures need no retry (the note is kept on each event).")
    return events.filter(status=Event.Status.FAILED).update(
        status=Event.Status.RESOLVED,
        failure_reason="",
        resolved_by=actor[:150],
        resolved_at=timezone.now(),
        resolution_note=note[:MAX_NOTE],
    )


def assign(events, user):
    if user is not None and not (user.is_active and user.is_staff):
        raise TriageError(f"{user.get_username()} is not an active staff member.")
    return events.update(assigned_to=user)
