"""The task queue's broker on PostgreSQL (config.queueing.OrmBroker): django-q2's ORM broker with one statement per
hand-out and per acknowledgement. Clusters on several hosts never get the same task; a task handed out and never
acknowledged is handed out again once its lock passes; a lost database connection costs one round, not the pusher."""

from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from config import queueing

pytestmark = [
    pytest.mark.django_db(transaction=True),  # the broker runs outside transactions, as in the pusher
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement broker is PostgreSQL's"),
    pytest.mark.skipif(bool(settings.REDIS_URL), reason="REDIS_URL set: tasks go to Redis"),
]


@pytest.fixture
def broker(monkeypatch):
    monkeypatch.setattr(Conf, "BULK", 3)
    monkeypatch.setattr(Conf, "POLL", 0)
    monkeypatch.setattr(queueing, "UNREACHABLE_WAIT", 0)
    return queueing.OrmBroker(list_key=Conf.CLUSTER_NAME)


def queue(broker, count):
    return [broker.enqueue(SignedPackage.dumps({"id": f"task-{n}", "n": n})) for n in range(count)]


def numbers(tasks):
    return [SignedPackage.loads(payload)["n"] for _, payload in tasks or []]


def end_session():
    """End this process's database session from another one, as a restart of the database would."""
    connection.ensure_connection()
    backend = connection.connection.info.backend_pid
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"],
        dbname=db["NAME"], autocommit=True,
    ) as admin:  # fmt: skip
        admin.execute("SELECT pg_terminate_backend(%s)", [backend])


def test_the_configured_broker_is_this_one_and_tasks_still_commit_with_their_work():
    assert isinstance(queueing.broker(), queueing.OrmBroker)
    assert queueing.in_same_database()


def test_two_clusters_get_disjoint_tasks_oldest_first_and_an_acknowledged_one_is_gone(broker):
    ids = queue(broker, 5)
    other = queueing.OrmBroker(list_key=Conf.CLUSTER_NAME)

    first, second = broker.dequeue(), other.dequeue()

    assert numbers(first) == [0, 1, 2] and numbers(second) == [3, 4]
    assert broker.dequeue() is None  # all five locked for `retry` seconds
    assert all(
        lock > timezone.now() + timedelta(seconds=Conf.RETRY - 5)
        for lock in OrmQ.objects.values_list("lock", flat=True)
    )
    broker.acknowledge(first[0][0])
    assert sorted(OrmQ.objects.values_list("id", flat=True)) == ids[1:]


def test_a_task_never_acknowledged_is_handed_out_again_once_its_lock_passes(broker):
    queue(broker, 1)
    ((task_id, _),) = broker.dequeue()
    assert broker.dequeue() is None
    OrmQ.objects.filter(id=task_id).update(
        lock=timezone.now() - timedelta(seconds=1)
    )  # `retry` seconds later
    assert [task_id] == [tid for tid, _ in broker.dequeue()]


def test_a_database_connection_lost_costs_one_empty_round_then_tasks_flow_again(broker, caplog):
    queue(broker, 4)
    assert numbers(broker.dequeue()) == [0, 1, 2]
    end_session()

    assert broker.dequeue() is None
    assert "The task queue's database is unreachable" in caplog.text
    assert numbers(broker.dequeue()) == [3]


def test_an_acknowledgement_on_a_lost_connection_is_made_on_a_new_one(broker):
    queue(broker, 1)
    ((task_id, _),) = broker.dequeue()
    end_session()

    broker.acknowledge(task_id)

    assert not OrmQ.objects.filter(id=task_id).exists()
