"""django-q2 in one place: `enqueue` is the one way to queue a task, `Every` declares a schedule.

Each app names its tasks and declares its schedules in its own `schedules.py` (connector/schedules.py,
tenants/schedules.py, audit/schedules.py); its AppConfig creates the schedules after every migrate
(`post_migrate` -> `ensure_schedules`). Adding a task is one line there, `NAME = "app.module.function"`, and
`enqueue(NAME, *args)` where it is queued; adding a schedule is one `Every(...)` line in the app's SCHEDULES.
Task arguments are stored in clear by django-q2: pass ids, never secrets.
"""

import functools
import logging
from dataclasses import dataclass
from datetime import timedelta
from time import sleep

from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    InterfaceError,
    OperationalError,
    connections,
    transaction,
)
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.tasks import async_task

log = logging.getLogger(__name__)

# django_q.models.Schedule.schedule_type values (the model is not imported before the app registry is ready).
DAILY, MINUTES, ONCE = "D", "I", "O"


@dataclass(frozen=True)
class Every:
    """A repeating schedule: `name` (unique; operators see it in the admin), the task `func` (dotted path), every
    `minutes` minutes or daily (minutes=None). `when`: a callable; while it returns False the schedule is
    removed (e.g. retention off). An operator's changes to the timing survive later migrations."""

    name: str
    func: str
    minutes: int | None = None
    when: object = None

    def timing(self):
        if self.minutes is None:
            return {"schedule_type": DAILY}
        return {"schedule_type": MINUTES, "minutes": self.minutes}


def ensure_schedules(schedules, using=DEFAULT_DB_ALIAS):
    """Create each schedule once (or remove it while its `when` is false); idempotent: runs after every
    migrate. Does nothing before django_q's own tables exist (the next migrate creates them)."""
    from django_q.models import Schedule

    if Schedule._meta.db_table not in connections[using].introspection.table_names():
        return
    rows = Schedule.objects.using(using)
    for schedule in schedules:
        if schedule.when is not None and not schedule.when():
            rows.filter(name=schedule.name).delete()
            continue
        rows.update_or_create(
            name=schedule.name,
            defaults={"func": schedule.func},
            create_defaults={"func": schedule.func, "repeats": -1, **schedule.timing()},
        )


def schedules_on_migrate(schedules):
    """A post_migrate receiver that ensures `schedules` (connect it in the app's AppConfig.ready)."""

    def receiver(using=DEFAULT_DB_ALIAS, **kwargs):
        ensure_schedules(schedules, using=using)

    return receiver


def enqueue(task, *args, on_commit=False, delay=0, **kwargs):
    """Queue `task(*args, **kwargs)` (`task`: a dotted name from an app's schedules.py); returns the task id,
    or None when it runs later.

    delay > 0: a one-off schedule `delay` seconds from now. on_commit: a worker sees the task only once the
    current transaction has committed: with django-q's ORM broker on this database the task row is inserted in
    the same transaction (the row and its task commit together or not at all; a database error rolls both
    back), with any other broker (Redis) it is pushed after commit. With on_commit a broker failure other than
    the database's is logged, not raised: what was stored stays visible, for a replay.
    """
    if delay > 0:
        return _later(task, args, kwargs, delay)
    if not on_commit:
        return async_task(task, *args, broker=broker(), **kwargs)
    if in_same_database():
        return _push(task, args, kwargs)
    transaction.on_commit(lambda: _push(task, args, kwargs))
    return None


def task_row(task, *args):
    """(list key, signed package) of the django-q2 ORM broker's row for `task(*args)`, built by django-q2's own
    `async_task` but not inserted: for a store that inserts its row in the same SQL statement as the work it
    queues (connector.endpoints.store). Only while `in_same_database()`."""
    captured = _Capture(broker().list_key)
    async_task(task, *args, broker=captured)
    return captured.list_key, captured.package


def in_same_database():
    """True when tasks are rows of this database (django-q2's ORM broker on the default database): a task
    then commits together with the transaction that queues it."""
    return isinstance(broker(), ORM) and Conf.ORM == DEFAULT_DB_ALIAS


class _Capture(ORM):
    """A broker that keeps the one package `async_task` gives it."""

    def __init__(self, list_key):
        self.list_key, self.package = list_key, None

    def enqueue(self, task):
        self.package = task


UNREACHABLE_WAIT = 1  # seconds between hand-outs while the database is away


class OrmBroker(ORM):
    """django-q2's ORM broker (Q_CLUSTER "broker_class" when tasks are rows of the database) with one SQL statement
    per hand-out and per acknowledgement on PostgreSQL, where django-q2's own takes four to five: a connection
    health check, a SELECT then an UPDATE per task (the DELETE in a transaction of its own). Other databases
    (SQLite under `make run`) get django-q2's own.

    The hand-out locks rows with FOR UPDATE SKIP LOCKED, so clusters on several hosts never take the same task;
    a task's `lock` is pushed `retry` seconds ahead as django-q2 does. A lost connection (the database restarted)
    is closed and the next round opens a new one, in place of the per-round health check."""

    DEQUEUE = (
        "WITH taken AS (UPDATE django_q_ormq SET lock = %s WHERE id IN (SELECT id FROM django_q_ormq WHERE key = %s "
        "AND lock < %s ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id, payload) "
        "SELECT id, payload FROM taken ORDER BY id"
    )
    DELETE = "DELETE FROM django_q_ormq WHERE id = %s"

    def _raw(self):
        connection = connections[Conf.ORM]
        return connection if connection.vendor == "postgresql" and connection.get_autocommit() else None

    def _execute(self, connection, sql, params):
        """Rows of `sql` (or the row count when it returns none); closes a lost connection and raises."""
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall() if cursor.description else cursor.rowcount
        except (OperationalError, InterfaceError):
            connection.close()  # the next round connects again
            raise

    def dequeue(self):
        """[(task id, signed package)] of at most Q_CLUSTER["bulk"] tasks, now this cluster's; None (after a
        `poll` sleep) when none is due, or after UNREACHABLE_WAIT while the database is away."""
        connection = self._raw()
        if connection is None:
            return super().dequeue()
        now = timezone.now()
        try:
            tasks = self._execute(
                connection, self.DEQUEUE, [self.timeout(None), self.list_key, now, Conf.BULK]
            )
        except (OperationalError, InterfaceError) as exc:
            log.warning("The task queue's database is unreachable (%s); again in %s s", exc, UNREACHABLE_WAIT)
            sleep(UNREACHABLE_WAIT)
            return None
        if tasks:
            return tasks
        sleep(Conf.POLL)  # empty queue: spare the CPU (as django-q2)
        return None

    def delete(self, task_id):
        connection = self._raw()
        if connection is None:
            return super().delete(task_id)
        try:
            return self._execute(connection, self.DELETE, [task_id])
        except (OperationalError, InterfaceError):  # once more on a new connection; then the monitor's error
            return self._execute(connection, self.DELETE, [task_id])


@functools.cache
def broker():
    """One django-q broker per process (get_broker() builds a new one, and a Redis connection, each call)."""
    return get_broker()


def _push(task, args, kwargs):
    try:
        return async_task(task, *args, broker=broker(), **kwargs)
    except DatabaseError:
        raise
    except Exception:
        log.exception("Could not enqueue %s%r; what it works on stays stored for a replay", task, args)
        return None


def _later(task, args, kwargs, delay):
    from django_q.models import Schedule

    Schedule.objects.create(
        name=f"{task.rsplit('.', 1)[-1]} {', '.join(map(str, args))}"[:100],
        func=task,
        args=", ".join(map(repr, args)) or None,
        kwargs=", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or None,
        schedule_type=ONCE,
        repeats=-1,
        next_run=timezone.now() + timedelta(seconds=delay),
    )
    return None
