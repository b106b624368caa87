"""End to end with the real django-q2 cluster: `manage.py qcluster` as a subprocess on the test database
processes an enqueued event against the loopback fakes (FreshBooks records, Jira Cloud)."""

import sys
import time

import pytest
from django.db import connection
from django_q.models import Schedule
from django_q.tasks import async_task

from audit.models import Event
from connector.models import WorklogRule
from tests.processes import environment, start, stop
from tests.processing import issues, make_event, worklogs

WAIT_SECONDS = 60

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the SQLite test database lives in memory, invisible to a qcluster subprocess; "
        "this test runs on PostgreSQL (CI: DATABASE_URL=postgres://…)",
    ),
]


@pytest.fixture
def cluster(fb, tmp_path):
    """A running `manage.py qcluster` (1 worker) on the test database; stopped (its process group) after."""
    Schedule.objects.all().delete()  # only what the test enqueues runs
    env = environment(fb.url, Q_WORKERS="1")
    log_path = tmp_path / "qcluster.log"
    process, log = start([sys.executable, "manage.py", "qcluster"], env, log_path)
    try:
        yield process
    finally:
        stop(process, log, log_path)


def wait_for(event, statuses, cluster):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        event.refresh_from_db()
        if event.status in statuses:
            return event
        assert cluster.poll() is None, "qcluster exited early"
        time.sleep(0.25)
    pytest.fail(f"event {event.pk} still {event.status} after {WAIT_SECONDS} s")


@pytest.mark.django_db(transaction=True)
def test_real_cluster_turns_queued_events_into_one_issue_and_one_worklog(connected, fb, jira, cluster):
    invoice = make_event(connected, "invoice.create", 987654)
    duplicate = make_event(connected, "invoice.create", 987654)
    jira.state["issues"]["FIN-7"] = {"id": "30001", "key": "FIN-7", "fields": {"summary": "x"}, "properties": {},
                                     "hidden_searches": 0, "created": 0}  # fmt: skip
    WorklogRule.objects.create(
        tenant=connected, match_kind="project", match_value="654321", issue_key="FIN-7"
    )
    entry = make_event(connected, "time_entry.create", 123456)
    for event in (invoice, duplicate, entry):
        async_task("connector.tasks.process_event", event.pk)

    for event in (invoice, duplicate, entry):
        wait_for(event, {"succeeded", "failed", "skipped"}, cluster)

    assert {e.status for e in Event.objects.all()} == {"succeeded"}, list(
        Event.objects.values_list("status", "status_detail")
    )
    created = [i for i in issues(jira) if i["key"] != "FIN-7"]
    assert len(created) == 1
    assert created[0]["fields"]["summary"] == "Invoice ACM0002 for Gordon Shumway: 41.94 CAD"
    invoice.refresh_from_db()
    duplicate.refresh_from_db()
    assert invoice.jira_key == duplicate.jira_key == created[0]["key"]
    assert len(worklogs(jira)) == 1
    assert invoice.attempt_set.filter(actor="worker", action="POST /rest/api/3/issue").count() <= 1
