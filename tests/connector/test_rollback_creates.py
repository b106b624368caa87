"""Rollback never destroys Jira-side work unasked: rolling back a create whose issue people changed since
(renamed, worked on, given sub-tasks), or whose worklog they edited, shows the changes and asks first (function,
admin page, command, --overwrite); confirmed, the issue goes with its sub-tasks (deleteSubtasks=true)."""

import io
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from audit.models import Event
from connector.models import Link
from connector.rollback import RollbackConflict, rollback
from connector.schedules import ROLLBACK
from tests.connector.test_rollback_changes import ENTRY, INVOICE, ORIGINAL, logged  # noqa: F401 (fixture)
from tests.processing import issues, process, run_queued, worklogs

pytestmark = pytest.mark.django_db


@pytest.fixture
def created(connected, fb, jira):
    event = process(connected, "invoice.create", INVOICE)
    assert event.status == "succeeded" and event.jira_key == "FIN-1"
    return event


def add_subtask(jira, parent="FIN-1"):
    """A sub-task someone created under `parent` in Jira."""
    jira.state["projects"]["FIN"]["issueTypes"].append("Sub-task")
    jira.state["issues"]["FIN-2"] = {
        "id": "20002", "key": "FIN-2", "properties": {}, "hidden_searches": 0, "created": 0,
        "fields": {"summary": "Chase payment", "project": {"key": "FIN"}, "parent": {"key": parent},
                   "issuetype": {"id": "10003", "name": "Sub-task", "subtask": True}},
    }  # fmt: skip


def add_people_worklog(jira, key="FIN-1"):
    jira.state["worklogs"].setdefault(key, []).append(
        {"id": "40001", "issueId": "x", "started": "2026-01-05T09:00:00.000+0000", "timeSpentSeconds": 5400,
         "comment": None, "properties": []}
    )  # fmt: skip


def test_an_issue_renamed_in_jira_is_not_deleted_without_confirmation(created, jira):
    jira.state["issues"]["FIN-1"]["fields"]["summary"] = "Renamed by the finance team"

    with pytest.raises(RollbackConflict) as conflict:
        rollback(created, actor="test")

    assert ("FIN-1", "summary", ORIGINAL, "Renamed by the finance team") in conflict.value.differences
    assert "FIN-1" in jira.state["issues"] and not jira.calls("DELETE")
    assert Link.objects.get().state == Link.State.CREATED
    rollback(created, actor="test", overwrite=True)
    assert "FIN-1" not in jira.state["issues"]


def test_work_logged_by_people_is_shown_before_the_issue_goes(created, jira):
    add_people_worklog(jira)
    with pytest.raises(RollbackConflict) as conflict:
        rollback(created, actor="test")
    ((what, name, ours, now),) = conflict.value.differences
    assert (what, name) == ("FIN-1", "worklogs") and "1 logged in Jira (1.50 h)" in now


def test_a_confirmed_rollback_deletes_the_issue_with_its_subtasks(created, jira):
    add_subtask(jira)

    with pytest.raises(RollbackConflict) as conflict:
        rollback(created, actor="test")
    assert ("FIN-1", "sub-tasks", "none", "FIN-2, deleted with it") in conflict.value.differences
    assert not jira.calls("DELETE")

    done = rollback(created, actor="test", overwrite=True)

    assert done == ["deleted issue FIN-1"]
    assert not issues(jira)
    (delete,) = jira.calls("DELETE")
    assert delete.query.get("deleteSubtasks") == ["true"]
    created.refresh_from_db()
    assert created.status == Event.Status.ROLLED_BACK


def test_an_unchanged_issue_is_rolled_back_without_a_question(created, jira):
    assert rollback(created, actor="test") == ["deleted issue FIN-1"]
    (delete,) = jira.calls("DELETE")
    assert (
        "deleteSubtasks" not in delete.query
    )  # nothing confirmed: Jira would refuse rather than take sub-tasks


def test_the_admin_page_lists_the_changes_and_asks(created, jira, staff_client):
    add_subtask(jira)
    url = reverse("admin:audit_event_changelist")
    data = {"action": "rollback_selected", "_selected_action": [created.pk], "post": "yes"}

    asked = staff_client.post(url, data).content.decode()

    assert "FIN-2, deleted with it" in asked and 'name="overwrite" value="yes"' in asked
    assert "FIN-1" in jira.state["issues"]
    done = staff_client.post(url, {**data, "overwrite": "yes"}, follow=True).content.decode()
    assert "Rollback of 1 event queued" in done and "FIN-1" in jira.state["issues"]
    assert run_queued(ROLLBACK) == ["Rolled back by admin:operator: deleted issue FIN-1."]  # the worker
    assert not issues(jira)


def test_the_command_asks_on_a_terminal_and_refuses_unattended_unless_overwrite(created, jira, monkeypatch):
    add_subtask(jira)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    out = StringIO()
    with pytest.raises(CommandError, match="could not be rolled back"):
        call_command("rollback_event", str(created.pk), "--yes", stdout=out)
    assert "FIN-1 sub-tasks" in out.getvalue() and "FIN-2" in out.getvalue()
    assert "FIN-1" in jira.state["issues"]

    call_command("rollback_event", str(created.pk), "--yes", "--overwrite", stdout=out)
    assert not issues(jira)


def test_a_created_worklog_edited_in_jira_is_not_deleted_unasked(connected, fb, jira, logged):  # noqa: F811
    worklog = worklogs(jira)[0]
    worklog["timeSpentSeconds"] = 3600  # corrected by hand in Jira
    event = Event.objects.get(name="time_entry.create", object_id=str(ENTRY))

    with pytest.raises(RollbackConflict) as conflict:
        rollback(event, actor="test")

    assert (f"worklog {worklog['id']} on FIN-7", "timeSpentSeconds", 9840, 3600) in conflict.value.differences
    assert worklogs(jira)
    rollback(event, actor="test", overwrite=True)
    assert not worklogs(jira)
