"""The FreshBooks webhook's store on PostgreSQL in one SQL message: the ingest hot path.

The same steps as the view's `deduplicate` and `store` (connector.endpoints.freshbooks, which SQLite, make run's
database, keeps), in two round trips instead of six, without the ORM's insert or django-q2's broker call:

1. ``nextval`` of audit_event's id sequence (the task's package names the event, so its id comes first);
2. one message of two statements, which PostgreSQL runs as one transaction (no BEGIN/COMMIT round trips):
   ``pg_advisory_xact_lock`` on (tenant, name, object id), so a concurrent delivery for the same object waits
   until this one commits and sees it; then one ``INSERT … SELECT`` that finds the event still open for the
   object and the newest event of the same signed body within WEBHOOK_REPLAY_WINDOW, decides as
   connector.repeats.replay_of does, inserts the event (queued, or the duplicate of the open one) unless the
   delivery is a replay, and — with django-q2's ORM broker on this database — inserts the task row of a queued
   event (config.queueing.task_row), so the event and its task commit together or not at all.

With any other broker (Redis) the task is pushed after that commit, as `config.queueing.enqueue` does.
"""

import functools
import hashlib

from django.db import connection
from django.utils import timezone

from audit.models import Event
from config.queueing import enqueue, in_same_database, task_row
from connector import repeats
from connector.schedules import PROCESS_EVENT

QUEUED, PROCESSING, DUPLICATE = Event.Status.QUEUED, Event.Status.PROCESSING, Event.Status.DUPLICATE


def lock_key(*parts):
    """A signed 64-bit key for pg_advisory_xact_lock."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def store_event(event, since):
    """Store `event` (an unsaved FreshBooks audit.Event, status queued) unless its delivery is a replay.

    `since`: the start of the replay window (datetime). Returns (stored, original, replay_of): whether it was
    stored (then `event.pk` and `event.status`, queued or duplicate, are set), the id of the event still open
    for the same object (or None) and the id of the event this very delivery replays (or None)."""
    adapt = connection.ops.adapt_datetimefield_value
    # Before the cursor: django-q2 builds its broker on first use and closes this process's old connections then.
    same_database = in_same_database()
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence('audit_event', 'id'))")
        event.pk = cursor.fetchone()[0]
        task = task_row(PROCESS_EVENT, event.pk) if same_database else None
        event.received_at = timezone.now()
        payload = Event._meta.get_field("payload").get_db_prep_save(event.payload, connection)  # encrypted
        cursor.execute(
            _sql(task is not None),
            [
                lock_key(str(event.tenant_id), event.name, event.object_id),
                *(event.tenant_id, event.name, event.object_id, QUEUED, PROCESSING),
                *(event.body_hash, adapt(since), *repeats.OPEN, DUPLICATE),
                *(getattr(event, name) for name in GIVEN),
                *(payload, adapt(event.received_at), QUEUED, DUPLICATE, *_defaults()[1]),
                *((*task, adapt(event.received_at), QUEUED) if task else ()),
            ],
        )
        cursor.nextset()  # past the lock's result
        original, replay_of, stored = cursor.fetchone()
    if stored and not original and task is None:
        enqueue(PROCESS_EVENT, event.pk, on_commit=True)  # committed already: pushed now
    event.status, event.duplicate_of_id = (DUPLICATE, original) if original else (QUEUED, None)
    return bool(stored), original, replay_of


# The columns a delivery sets, as they are (plain values); payload and received_at follow them, prepared by their
# fields; status and duplicate_of are decided in SQL; every other column holds its field's fixed default.
GIVEN = ("id", "tenant_id", "source", "name", "object_id", "account_id", "business_id", "body_hash")
SET = {"id", "tenant", "source", "name", "object_id", "account_id", "business_id", "body_hash", "payload"}
SET |= {"received_at", "status", "duplicate_of"}


@functools.cache
def _defaults():
    """(fields, database values) of the columns at their fields' fixed defaults, prepared once per process."""
    fields = [f for f in Event._meta.concrete_fields if f.name not in SET]
    assert not [f for f in fields if f.has_default() and callable(f.default)], "defaults must be fixed"
    return fields, [f.get_db_prep_save(f.get_default(), connection) for f in fields]


@functools.cache
def _sql(with_task):
    """The message: the lock, then the store."""
    defaults = _defaults()[0]
    columns = [*GIVEN, "payload", "received_at", "status", "duplicate_of_id", *(f.column for f in defaults)]
    quoted = ", ".join(connection.ops.quote_name(column) for column in columns)
    some = ", ".join(["%s"] * (len(GIVEN) + 2))
    some_defaults = ", ".join(["%s"] * len(defaults))
    open_statuses = ", ".join(["%s"] * len(repeats.OPEN))
    task = (
        ", queued AS (INSERT INTO django_q_ormq (key, payload, lock) SELECT %s, %s, %s FROM stored"
        " WHERE status = %s RETURNING id)"
        if with_task
        else ""
    )
    # Only the model's column names and placeholders are put together here: every value is a parameter.
    return (
        "SELECT pg_advisory_xact_lock(%s);"  # noqa: S608
        " WITH earlier AS ("
        "  SELECT (SELECT id FROM audit_event WHERE tenant_id = %s AND name = %s AND object_id = %s"
        "   AND status IN (%s, %s) ORDER BY id LIMIT 1) AS open_id, newest.id AS newest_id,"
        "   newest.status AS newest_status"
        "  FROM (SELECT 1) AS one LEFT JOIN LATERAL (SELECT id, status FROM audit_event"
        "   WHERE body_hash = %s AND received_at >= %s ORDER BY id DESC LIMIT 1) AS newest ON true),"
        " decided AS ("
        "  SELECT open_id, CASE WHEN newest_status IN (" + open_statuses + ")"
        "   OR (newest_status = %s AND open_id IS NOT NULL) THEN newest_id END AS replay_of FROM earlier),"
        " stored AS ("
        "  INSERT INTO audit_event (" + quoted + ")"
        "  SELECT " + some + ", CASE WHEN open_id IS NULL THEN %s ELSE %s END, open_id, " + some_defaults + ""
        " FROM decided WHERE replay_of IS NULL RETURNING id, status)"
        + task
        + " SELECT open_id, replay_of, (SELECT count(*) FROM stored) FROM decided"
    )
