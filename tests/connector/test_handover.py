"""A run whose worker host went away mid-task (network cut) is taken over by another worker (docs/scale-out.md):
the silent run's row locks are ended by PostgreSQL (config/database.py), and a hand-out of its task that comes
before the event is stale queues a run for when it is (connector.tasks.check_when_stale)."""

import os
import signal
import sys
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_q.models import Schedule

from audit.models import Event
from connector.models import Link
from connector.retry import task_timeout
from connector.tasks import process_event
from tests.processes import environment, start
from tests.processing import created_issues, issues, make_event

SILENT_RUN = "import sys, django; django.setup(); from connector.tasks import process_event; process_event(int(sys.argv[1]))"
BOUND = 30  # seconds any wait of these tests may last


def hold_create_answers(jira, release):
    """Jira applies each issue create at once and answers it only once `release` is set (at most BOUND s): the
    answer a worker never gets when its cable is pulled mid-call. Returns an Event set when a create is held."""
    held, plain_dispatch = threading.Event(), jira.dispatch

    def dispatch(request):
        response = plain_dispatch(request)
        if request.method == "POST" and request.path.endswith("/rest/api/3/issue"):
            held.set()
            release.wait(BOUND)
        return response

    jira.dispatch = dispatch
    return held


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks held by another process's session need PostgreSQL"
)
@pytest.mark.django_db(transaction=True)
def test_a_run_gone_silent_mid_jira_call_is_taken_over_without_waiting_for_it(
    connected, fb, jira, settings, tmp_path
):
    """The first run (another process, Q_TIMEOUT=2) has created the issue and holds the ledger link's row lock
    while it waits for Jira's answer; then it goes silent (SIGSTOP: its host's cable pulled, nothing of it reaches
    the database). Once the event is stale, a second run takes it over within seconds: PostgreSQL ended the
    silent session, its lock with it, and the second run adopts the issue the first one created."""
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 2}
    event = make_event(connected, "invoice.create", 987654)
    release = threading.Event()
    held = hold_create_answers(jira, release)
    log_path = tmp_path / "silent-run.log"
    first, log = start(
        [sys.executable, "-c", SILENT_RUN, str(event.pk)], environment(fb.url, Q_TIMEOUT="2"), log_path
    )
    try:
        assert held.wait(BOUND), log_path.read_text()[-3000:]
        os.killpg(first.pid, signal.SIGSTOP)
        event.refresh_from_db()
        assert event.status == "processing" and Link.objects.get().state == Link.State.PENDING
        time.sleep(max(0.0, (event.started_at - timezone.now()).total_seconds() + task_timeout() + 0.2))
        with connection.cursor() as cursor:  # without the session timeout the lock is never released: bounded
            cursor.execute("SET lock_timeout = '10s'")

        began = time.monotonic()
        assert process_event(event.pk) == "succeeded"
        took = time.monotonic() - began
    finally:
        release.set()
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(BOUND)
        log.close()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")

    assert took < 5, f"the second run waited {took:.1f} s"
    event.refresh_from_db()
    assert event.status == "succeeded" and event.attempts == 2
    assert len(created_issues(jira)) == 1 and [i["key"] for i in issues(jira)] == [event.jira_key]
    assert Link.objects.get().state == Link.State.CREATED


@pytest.mark.django_db
def test_a_hand_out_before_the_event_is_stale_queues_a_run_for_when_it_is(connected, fb, jira):
    """The task of a run cut off mid-task is handed out again after Q_RETRY; when that run had started late (it
    waited in its cluster's queue), the event is not stale yet and the hand-out is refused. A run is then queued
    for just after the event becomes stale, and that run takes it over."""
    event = make_event(connected, "invoice.create", 987654, status="processing")
    started = timezone.now() - timedelta(seconds=100)
    Event.objects.filter(pk=event.pk).update(started_at=started, attempts=1)

    assert process_event(event.pk) == "not claimed"

    schedule = Schedule.objects.get(func="connector.tasks.process_event")
    stale_at = started + timedelta(seconds=task_timeout())
    assert schedule.args == repr(event.pk)
    assert stale_at < schedule.next_run <= stale_at + timedelta(seconds=2)
    Event.objects.filter(pk=event.pk).update(started_at=started - timedelta(seconds=task_timeout()))  # then
    assert process_event(event.pk) == "succeeded"
    event.refresh_from_db()
    assert event.attempts == 2 and len(issues(jira)) == 1


@pytest.mark.django_db
def test_a_refused_run_of_a_finished_or_unstarted_event_queues_nothing(connected, fb, jira):
    finished = make_event(connected, "invoice.create", 987654, status="succeeded")
    unstarted = make_event(connected, "invoice.create", 987655, status="processing")  # no started_at

    assert process_event(finished.pk) == process_event(unstarted.pk) == "not claimed"
    assert not Schedule.objects.filter(func="connector.tasks.process_event").exists()
