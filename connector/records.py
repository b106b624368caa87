"""Fetching FreshBooks records for the handlers, and reading their state.

A record FreshBooks no longer has (404) or has soft-deleted (``vis_state`` 1; FreshBooks keeps serving it with
200) ends the event as skipped when the handler relies on it; archived records (``vis_state`` 2) are still
real accounting records and are synced, with a note on the event. Vendor source: FreshBooks accounting API
(``vis_state``: 0 active, 1 deleted, 2 archived; most deletes are an update of it).
"""

from connector.freshbooks.client import FreshBooksError

VIS_DELETED, VIS_ARCHIVED = "1", "2"  # FreshBooks accounting records' vis_state (0 active)


class Skip(Exception):
    """Nothing to do for this event (the message says why); the event is marked skipped."""


def _get(job, kind, object_id, includes=()):
    if kind == "time_entry":  # time tracking and projects live under the business, not the account
        return job.fb.get_time_entry(object_id)
    if kind == "project":
        return job.fb.get_project(object_id)
    return job.fb.get_record(kind, object_id, includes)


def live(job, kind, object_id, record):
    """`record` when it is in use; Skip when FreshBooks soft-deleted it (``vis_state`` 1: FreshBooks still
    serves deleted accounting records with 200). Archived records (``vis_state`` 2) are still real
    accounting records: they are synced, with a note on the event."""
    state = record.get("vis_state") if isinstance(record, dict) else None
    if str(state) == VIS_DELETED:
        raise Skip(f"{kind.replace('_', ' ')} {object_id} was deleted in FreshBooks")
    if str(state) == VIS_ARCHIVED:
        job.notes.append(f"{kind.replace('_', ' ')} {object_id} is archived in FreshBooks")
    return record


def fetch(job, kind, object_id, includes=()):
    """The record, or Skip when FreshBooks no longer has it (404) or has deleted it (vis_state 1)."""
    try:
        record = _get(job, kind, object_id, includes)
    except FreshBooksError as exc:
        if exc.status == 404:
            raise Skip(f"{kind.replace('_', ' ')} {object_id} no longer exists in FreshBooks") from exc
        raise
    return live(job, kind, object_id, record)


def fetch_related(job, kind, object_id, includes=()):
    """A related record; a missing one (404) is noted on the event, not fatal; a deleted one (vis_state 1)
    is Skip: the handler relies on it, so nothing is written to Jira."""
    if object_id in (None, "", 0, "0"):
        return None
    try:
        record = _get(job, kind, object_id, includes)
    except FreshBooksError as exc:
        if exc.status == 404:
            job.notes.append(f"{kind} {object_id} not found in FreshBooks")
            return None
        raise
    return live(job, kind, object_id, record)


def embedded(job, kind, record, id_key):
    """A related record FreshBooks embedded in the fetched one (a bill's vendor, an expense's category)."""
    return live(job, kind, record.get(id_key) or record.get("id"), record) if record else record
