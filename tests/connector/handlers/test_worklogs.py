"""Time entries → Jira worklogs: rules in order, create/update/delete to one worklog, unmatched skipped."""

import pytest

from audit.models import Event
from connector.handlers import jira_started
from connector.jira.adf import to_text
from connector.models import Link, WorklogRule
from connector.replay import replay
from tests.fakes.freshbooks_records import put
from tests.processing import process, worklogs

ENTRY = 123456  # java-sdk/get_time_entry_response.json: project 654321, client 56789, service 4054453


def add_issue(jira, key):
    jira.state["issues"][key] = {"id": str(30000 + len(jira.state["issues"])), "key": key,
                                 "fields": {"summary": key}, "properties": {}, "hidden_searches": 0, "created": 0}  # fmt: skip


@pytest.fixture
def rules(connected, jira):
    add_issue(jira, "FIN-7")
    add_issue(jira, "FIN-8")
    WorklogRule.objects.create(tenant=connected, match_kind="note_key", order=0)
    WorklogRule.objects.create(
        tenant=connected, match_kind="project", match_value="654321", issue_key="FIN-7", order=1
    )
    WorklogRule.objects.create(
        tenant=connected, match_kind="client", match_value="56789", issue_key="FIN-8", order=2
    )
    return connected


def test_started_is_jiras_format_in_utc():
    assert jira_started("2023-08-09T19:56:50Z") == "2023-08-09T19:56:50.000+0000"
    assert jira_started("2023-08-09T14:56:50.25-05:00") == "2023-08-09T19:56:50.250+0000"


@pytest.mark.parametrize("jira", ["cloud", "server"], indirect=True)
@pytest.mark.django_db
def test_create_update_delete_flow_to_one_worklog(rules, fb, jira):
    created = process(rules, "time_entry.create", ENTRY)

    assert created.status == "succeeded", created.status_detail
    (worklog,) = worklogs(jira)
    assert created.jira_key == "FIN-7"  # the project rule (the note names no issue)
    assert worklog["timeSpentSeconds"] == 9840
    assert worklog["started"] == "2023-08-09T19:56:50.000+0000"
    comment = worklog["comment"]
    assert (to_text(comment) if jira.deployment == "cloud" else comment) == "Slow day"
    assert worklog["properties"] == [
        {
            "key": "ml-connector",
            "value": {"tenant": "acme", "object_type": "time_entry", "object_id": str(ENTRY)},
        }
    ]

    put(fb, "time_entry", {**fb.samples["time_entry"], "duration": 30, "note": "Slower day"})
    updated = process(rules, "time_entry.update", ENTRY)

    assert updated.status == "succeeded", updated.status_detail
    (worklog,) = worklogs(jira)
    assert worklog["timeSpentSeconds"] == 60  # at least one minute
    assert (to_text(worklog["comment"]) if jira.deployment == "cloud" else worklog["comment"]) == "Slower day"

    fb.state["records"]["time_entry"].clear()  # deleted in FreshBooks: the record is gone
    deleted = process(rules, "time_entry.delete", ENTRY)

    assert deleted.status == "succeeded", deleted.status_detail
    assert worklogs(jira) == []
    assert Link.objects.get(purpose="worklog").state == "deleted"


@pytest.mark.django_db
def test_issue_key_in_the_note_wins_when_it_exists(rules, fb, jira):
    add_issue(jira, "OPS-42")
    put(fb, "time_entry", {**fb.samples["time_entry"], "note": "Fixed the export (OPS-42), see also FIN-8"})

    event = process(rules, "time_entry.create", ENTRY)

    # OPS is not a project of this tenant (it maps FIN): the note's first key in FIN wins.
    assert event.status == "succeeded" and event.jira_key == "FIN-8"
    assert "OPS-42 (from the note) is not in a project of this tenant" in event.status_detail


@pytest.mark.django_db
def test_missing_note_issue_falls_through_to_the_next_rule(rules, fb, jira):
    put(fb, "time_entry", {**fb.samples["time_entry"], "note": "Worked on FIN-404"})

    event = process(rules, "time_entry.create", ENTRY)

    assert event.status == "succeeded" and event.jira_key == "FIN-7"
    assert "FIN-404 (from the note) does not exist in Jira" in event.status_detail


@pytest.mark.django_db
def test_unmatched_entry_is_skipped_then_replayed_after_a_rule_is_added(connected, fb, jira):
    add_issue(jira, "FIN-9")
    event = process(connected, "time_entry.create", ENTRY)

    assert event.status == "skipped" and event.status_detail == "no matching issue"
    assert worklogs(jira) == []

    WorklogRule.objects.create(
        tenant=connected, match_kind="service", match_value="4054453", issue_key="FIN-9"
    )
    replay(Event.objects.filter(pk=event.pk), actor="test", sync=True)

    event.refresh_from_db()
    assert event.status == "succeeded" and event.jira_key == "FIN-9"
    assert len(worklogs(jira)) == 1


@pytest.mark.django_db
def test_update_before_create_creates_the_worklog_once(rules, fb, jira):
    first = process(rules, "time_entry.update", ENTRY)
    second = process(rules, "time_entry.update", ENTRY)

    assert first.status == second.status == "succeeded"
    assert len(worklogs(jira)) == 1


@pytest.mark.django_db
def test_running_timer_waits_for_the_update_that_stops_it(rules, fb, jira):
    put(
        fb,
        "time_entry",
        {**fb.samples["time_entry"], "duration": None, "timer": {"id": 1, "is_running": True}},
    )
    running = process(rules, "time_entry.create", ENTRY)
    assert running.status == "skipped" and "timer is still running" in running.status_detail

    put(fb, "time_entry", {**fb.samples["time_entry"], "duration": 1800})
    stopped = process(rules, "time_entry.update", ENTRY)

    assert stopped.status == "succeeded", stopped.status_detail
    (worklog,) = worklogs(jira)
    assert worklog["timeSpentSeconds"] == 1800


@pytest.mark.django_db
def test_delete_without_a_worklog_is_skipped(rules, fb, jira):
    event = process(rules, "time_entry.delete", ENTRY)
    assert event.status == "skipped" and "no worklog is linked to time entry" in event.status_detail


@pytest.mark.django_db
def test_worklog_applied_but_answered_500_then_replay_gives_one_worklog(rules, fb, jira):
    jira.state["fail_next"] = [("POST", r"/worklog$", 500, True)]

    event = process(rules, "time_entry.create", ENTRY)

    assert event.status == "failed" and "500" in event.status_detail
    assert len(worklogs(jira)) == 1
    assert Link.objects.get(purpose="worklog").state == "in_doubt"

    replay(Event.objects.filter(pk=event.pk), actor="test", sync=True)

    event.refresh_from_db()
    assert event.status == "succeeded", event.status_detail
    assert len(worklogs(jira)) == 1
    assert event.attempt_set.filter(action__endswith="/worklog", http_status=500).exists()  # history kept


@pytest.mark.django_db
def test_an_unreadable_start_fails_the_event_readably_not_as_an_internal_error(rules, fb, jira):
    put(fb, "time_entry", {**fb.samples["time_entry"], "started_at": "yesterday-ish"})

    event = process(rules, "time_entry.create", ENTRY)

    assert event.status == "failed"
    assert "unreadable duration 9840 or start 'yesterday-ish'" in event.status_detail
    assert not worklogs(jira)
