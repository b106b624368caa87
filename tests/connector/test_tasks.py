"""process_event: claiming, final statuses, automatic retry, and exactly-once under concurrency and replays."""

import pytest
from django.db import connection
from django_q.models import Schedule

from audit.models import Event
from connector.models import Link
from connector.replay import replay
from connector.retry import IDEMPOTENT_TRIES
from connector.tasks import MAX_AUTO_ATTEMPTS, process_event
from tests.processing import created_issues, issues, make_event, process
from tests.threads import run_in_threads

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="real row locks across concurrent connections need PostgreSQL (SQLite serialises writers)",
)


@pytest.mark.django_db
def test_an_event_already_processing_is_left_alone(connected, fb, jira):
    event = make_event(connected, "invoice.create", 987654, status="processing")

    assert process_event(event.pk) == "not claimed"

    event.refresh_from_db()
    assert event.status == "processing" and event.attempts == 0
    assert not fb.requests and not created_issues(jira)


@pytest.mark.django_db
def test_an_event_stuck_processing_past_the_task_timeout_is_taken_over(connected, fb, jira):
    from datetime import timedelta

    from django.utils import timezone

    event = make_event(connected, "invoice.create", 987654, status="processing")
    Event.objects.filter(pk=event.pk).update(started_at=timezone.now() - timedelta(hours=1), attempts=1)

    assert process_event(event.pk) == "succeeded"

    event.refresh_from_db()
    assert event.attempts == 2 and len(issues(jira)) == 1


@pytest.mark.django_db
def test_claim_counts_attempts_and_times(connected, fb, jira):
    event = process(connected, "invoice.create", 987654)
    assert event.attempts == 1 and event.started_at and event.finished_at >= event.started_at
    assert process_event(event.pk) == "not claimed"  # finished events need a replay


@pytest.mark.django_db
def test_unknown_kinds_and_missing_connections_end_readably(connected, fb, jira):
    estimate = process(connected, "estimate.create", 1)
    assert estimate.status == "skipped" and estimate.status_detail == "No handler for estimate.create."

    connected.jira_site.delete()
    event = process(connected, "invoice.create", 987654)
    assert event.status == "failed" and event.status_detail == "Tenant acme has no Jira site connected."


@pytest.mark.django_db
def test_transient_failure_fails_and_waits_for_replay_without_auto_retry(connected, fb, jira):
    jira.state["fail_next"] = [("POST", r"/issue$", 503)]

    event = process(connected, "invoice.create", 987654)

    assert event.status == "failed" and "503" in event.status_detail
    assert not Schedule.objects.filter(func="connector.tasks.process_event").exists()


@pytest.mark.django_db
def test_transient_failure_is_retried_later_with_auto_retry(connected, fb, jira):
    connected.auto_retry = True
    connected.save()
    jira.state["fail_next"] = [("POST", r"/issue$", 503)]

    event = process(connected, "invoice.create", 987654)

    assert event.status == "queued"
    assert f"automatic retry 1 of {MAX_AUTO_ATTEMPTS - 1}" in event.status_detail
    (schedule,) = Schedule.objects.filter(func="connector.tasks.process_event")
    assert schedule.func == "connector.tasks.process_event" and schedule.args == repr(event.pk)
    assert schedule.schedule_type == Schedule.ONCE and schedule.next_run > event.finished_at

    # What the scheduler will run: the same task, which now succeeds (the ledger resolves the in-doubt create).
    assert process_event(event.pk) == "succeeded"
    assert len(issues(jira)) == 1


@pytest.mark.django_db
def test_auto_retry_gives_up_after_the_bound(connected, fb, jira):
    connected.auto_retry = True
    connected.save()
    event = make_event(connected, "invoice.create", 987654)
    Event.objects.filter(pk=event.pk).update(attempts=MAX_AUTO_ATTEMPTS - 1)
    jira.state["fail_next"] = [("POST", r"/issue$", 502)]

    process_event(event.pk)

    event.refresh_from_db()
    assert event.status == "failed" and "gave up after 5 attempts" in event.status_detail
    assert not Schedule.objects.filter(func="connector.tasks.process_event").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("auto_retry", [False, True])
def test_freshbooks_failure_is_stored_readably(connected, fb, jira, auto_retry):
    import re

    from connector.sandbox.server import Response

    connected.auto_retry = auto_retry
    connected.save()
    broken = {"code": 13, "message": "Request failed with status_code: 500", "details": [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "500",
         "metadata": {"message": "FreshAlchemyUnexpected: try again later"}}]}  # fmt: skip
    fb.routes.insert(
        0, ("GET", re.compile(r"/accounting/.*/invoices/invoices/\d+\Z"), lambda r: Response(500, broken))
    )

    event = process(connected, "invoice.create", 987654)

    assert event.status == ("queued" if auto_retry else "failed")
    assert "→ 500: FreshAlchemyUnexpected: try again later" in event.status_detail
    # A GET is retried on 5xx like any idempotent vendor call (connector.transport), then fails readably.
    assert [a.http_status for a in event.attempt_set.all()] == [500] * IDEMPOTENT_TRIES
    assert not created_issues(jira)


@pytest.mark.django_db
def test_create_applied_but_answered_500_then_replay_gives_one_issue(connected, fb, jira):
    jira.state["fail_next"] = [("POST", r"/issue$", 500, True)]
    jira.state["search_lag"] = 1  # and Jira's search index lags the write

    event = process(connected, "invoice.create", 987654)

    assert event.status == "failed" and "500" in event.status_detail
    assert len(issues(jira)) == 1 and Link.objects.get().state == "in_doubt"

    result = replay(Event.objects.filter(pk=event.pk), actor="test", sync=True)

    event.refresh_from_db()
    assert result.queued and event.status == "succeeded", event.status_detail
    assert len(issues(jira)) == 1 and event.jira_key == issues(jira)[0]["key"]
    assert len(created_issues(jira)) == 1  # adopted, never re-posted
    assert event.attempts == 2 and event.attempt_set.filter(http_status=500).exists()


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_same_event_processed_by_two_workers_at_once_gives_one_issue(connected, fb, jira):
    jira.state["create_delay"] = 0.5
    event = make_event(connected, "invoice.create", 987654)

    run_in_threads(process_event, [(event.pk,), (event.pk,)])

    event.refresh_from_db()
    assert event.status == "succeeded" and event.attempts == 1
    assert len(issues(jira)) == 1 and len(created_issues(jira)) == 1


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_same_delivery_five_times_gives_one_issue(connected, fb, jira):
    jira.state["create_delay"] = 0.3
    events = [make_event(connected, "invoice.create", 987654) for _ in range(5)]

    run_in_threads(process_event, [(event.pk,) for event in events])

    assert len(issues(jira)) == 1 and len(created_issues(jira)) == 1
    keys = {e.jira_key for e in Event.objects.filter(pk__in=[e.pk for e in events])}
    assert keys == {issues(jira)[0]["key"]}
    assert set(Event.objects.values_list("status", flat=True)) == {"succeeded"}


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_five_time_entry_deliveries_at_once_give_one_worklog(connected, fb, jira):
    from connector.models import WorklogRule
    from tests.processing import worklogs

    jira.state["issues"]["FIN-7"] = {"id": "30001", "key": "FIN-7", "fields": {"summary": "x"}, "properties": {},
                                     "hidden_searches": 0, "created": 0}  # fmt: skip
    WorklogRule.objects.create(
        tenant=connected, match_kind="project", match_value="654321", issue_key="FIN-7"
    )
    events = [make_event(connected, "time_entry.create", 123456) for _ in range(5)]

    run_in_threads(process_event, [(event.pk,) for event in events])

    assert len(worklogs(jira)) == 1
    assert set(Event.objects.values_list("status", flat=True)) == {"succeeded"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "answer, expected",
    [
        pytest.param(
            {"response": {"errors": [{"errno": 1011, "message": "This invoice has been deleted."}]}},
            "unexpected answer: This invoice has been deleted.",
            id="errors-envelope-with-200",
        ),
        pytest.param({"response": {"result": {"invoice": None}}}, "unexpected answer", id="null-record"),
        pytest.param(
            "<html>down for maintenance</html>",
            "200 with a text/html page, not the JSON asked for",
            id="html-page",
        ),
    ],
)
def test_an_odd_freshbooks_answer_fails_the_event_with_its_text(connected, fb, jira, answer, expected):
    """Not an "Internal error: KeyError" (review-sync): the event says what FreshBooks answered."""
    import re

    from connector.sandbox.server import Response

    fb.routes.insert(
        0, ("GET", re.compile(r"/accounting/.*/invoices/invoices/\d+\Z"), lambda r: Response(200, answer))
    )

    event = process(connected, "invoice.create", 987654)

    assert event.status == "failed" and expected in event.status_detail
    assert "Internal error" not in event.status_detail and not created_issues(jira)
