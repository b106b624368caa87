"""End to end with the real django-q2 cluster: `manage.py qcluster` as a subprocess on the test database
processes an enqueued event against the loopback fakes (FreshBooks records, Jira Cloud)."""

import os
import signal
import subprocess
import sys
import time

import pytest
from django.db import connection
from django_q.models import Schedule
from django_q.tasks import async_task

from audit.models import Event
from connector.models import WorklogRule
from tests import ROOT
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


def database_url():
    settings = connection.settings_dict
    user = settings.get("USER") or "postgres"
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or "5432"
    return f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"


@pytest.fixture
def cluster(fb, tmp_path):
    """A running `manage.py qcluster` (1 worker) on the test database; stopped (its process group) after."""
    Schedule.objects.all().delete()  # only what the test enqueues runs
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "FRESHBOOKS_API_URL": fb.url,
        # Nothing may leave loopback: every other vendor URL points at the fake too.
        "FRESHBOOKS_AUTH_URL": fb.url,
        "ATLASSIAN_AUTH_URL": fb.url,
        "ATLASSIAN_API_URL": fb.url,
        "Q_WORKERS": "1",
        "Q_POLL": "0.2",
        "CONN_MAX_AGE": "0",
    }
    log = (tmp_path / "qcluster.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        log.close()
        print((tmp_path / "qcluster.log").read_text()[-3000:])


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
