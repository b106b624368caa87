"""Rollback (function, command, admin action and event-page button) against the loopback fake Jira. The admin
queues it for the worker (the tests run the queued task as a worker would)."""

import io
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from audit.models import Event
from connector import http, transport
from connector.models import Link, WorklogRule
from connector.replay import replay
from connector.rollback import RollbackFailed, RollbackRefused, rollback
from connector.schedules import ROLLBACK
from tests.processing import created_issues, issues, process, queued, run_queued, worklogs

ENTRY = 123456  # the fixture time entry: project 654321


def rollback_cmd(*args):
    out = StringIO()
    call_command("rollback_event", *args, stdout=out)
    return out.getvalue()


def deletes(jira):
    return jira.calls("DELETE")


@pytest.fixture
def invoice(connected, fb, jira):
    event = process(connected, "invoice.create", 987654)
    assert event.status == "succeeded", event.status_detail
    assert [issue["key"] for issue in issues(jira)] == [event.jira_key]
    return event


@pytest.mark.django_db
def test_rollback_deletes_the_issue_and_nothing_re_creates_it(connected, invoice, fb, jira):
    removed = rollback(invoice, actor="admin:operator")

    assert removed == [f"deleted issue {invoice.jira_key}"]
    assert issues(jira) == []
    link = Link.objects.get(event=invoice)
    assert link.state == "rolled_back"
    invoice.refresh_from_db()
    assert invoice.status == "rolled_back"
    assert invoice.status_detail == f"Rolled back by admin:operator: deleted issue {invoice.jira_key}."
    attempt = invoice.attempt_set.get(action__startswith="DELETE")
    assert attempt.actor == "admin:operator" and attempt.http_status == 204

    result = replay(Event.objects.filter(pk=invoice.pk), actor="test", sync=True)
    assert not result.queued and result.refused[0][1] == "it is rolled back"
    again = process(connected, "invoice.create", 987654)  # the same delivery arriving once more
    assert again.status == "skipped" and "rolled back: not re-created" in again.status_detail
    assert issues(jira) == [] and len(created_issues(jira)) == 1


@pytest.mark.django_db
def test_rollback_of_a_time_entry_removes_its_worklog_only(connected, fb, jira):
    jira.state["issues"]["FIN-7"] = {"id": "30000", "key": "FIN-7", "fields": {"summary": "Work"},
                                     "properties": {}, "hidden_searches": 0, "created": 0}  # fmt: skip
    WorklogRule.objects.create(
        tenant=connected, match_kind="project", match_value="654321", issue_key="FIN-7"
    )
    event = process(connected, "time_entry.create", ENTRY)
    (worklog,) = worklogs(jira)

    removed = rollback(event, actor="test")

    assert removed == [f"deleted worklog {worklog['id']} on FIN-7"]
    assert worklogs(jira) == [] and "FIN-7" in jira.state["issues"]  # the issue was not ours
    assert Link.objects.get(event=event).state == "rolled_back"
    event.refresh_from_db()
    assert event.status == "rolled_back"
    again = process(connected, "time_entry.update", ENTRY)
    assert again.status == "skipped" and "rolled back: not re-created" in again.status_detail
    assert worklogs(jira) == []


@pytest.mark.django_db
def test_an_issue_already_deleted_in_jira_still_rolls_back(invoice, jira):
    with jira.lock:
        jira.state["issues"].clear()

    removed = rollback(invoice, actor="test")

    assert removed == [f"deleted issue {invoice.jira_key} (already gone from Jira)"]
    invoice.refresh_from_db()
    assert invoice.status == "rolled_back" and Link.objects.get(event=invoice).state == "rolled_back"
    assert invoice.attempt_set.get(action__startswith="DELETE").http_status == 404


@pytest.mark.django_db
def test_nothing_to_undo_is_refused_and_changes_nothing(connected, invoice, fb, jira):
    skipped = process(connected, "expense.create", 777)  # the record is gone: nothing written
    assert skipped.status == "skipped"
    before = (skipped.status, skipped.status_detail, skipped.attempt_set.count())

    with pytest.raises(RollbackRefused, match="nothing to undo"):
        rollback(skipped, actor="test")

    skipped.refresh_from_db()
    assert (skipped.status, skipped.status_detail, skipped.attempt_set.count()) == before
    rollback(invoice, actor="test")
    with pytest.raises(RollbackRefused, match="already rolled back"):
        rollback(invoice, actor="test")
    assert len(deletes(jira)) == 1


@pytest.mark.django_db
def test_a_jira_failure_keeps_the_event_and_link_and_says_why(invoice, jira):
    jira.state["fail_next"] = [("DELETE", r"/issue/", 403)]

    with pytest.raises(RollbackFailed, match="403"):
        rollback(invoice, actor="test")

    invoice.refresh_from_db()
    assert invoice.status == "succeeded"
    assert invoice.status_detail.startswith(f"Rollback by test failed at issue {invoice.jira_key}: ")
    assert Link.objects.get(event=invoice).state == "created" and len(issues(jira)) == 1
    assert invoice.attempt_set.get(action__startswith="DELETE").http_status == 403  # kept in the trail

    rollback(invoice, actor="test")  # once Jira lets us, it works
    assert issues(jira) == []


@pytest.mark.django_db
def test_command_with_yes_rolls_back_and_reports_each_event(connected, invoice, fb, jira):
    skipped = process(connected, "expense.create", 777)

    out = rollback_cmd(str(invoice.pk), str(skipped.pk), "--yes")

    assert f"Rolled back #{invoice.pk} invoice.create 987654: deleted issue {invoice.jira_key}" in out
    assert f"Refused #{skipped.pk} expense.create 777: nothing to undo" in out
    assert issues(jira) == []


@pytest.mark.django_db
def test_command_without_yes_needs_a_terminal(invoice, jira, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    with pytest.raises(CommandError, match="pass --yes to confirm"):
        rollback_cmd(str(invoice.pk))
    assert len(issues(jira)) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("answer, gone", [("y", True), ("", False)])
def test_command_asks_on_a_terminal(invoice, jira, monkeypatch, answer, gone):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Terminal(""))
    monkeypatch.setattr("builtins.input", lambda prompt: answer)

    out = rollback_cmd(str(invoice.pk))

    assert (issues(jira) == []) is gone
    assert ("Rolled back" in out) is gone and ("Cancelled" in out) is not gone


@pytest.mark.django_db
def test_command_unknown_id_is_one_line(invoice, jira):
    with pytest.raises(CommandError, match=r"^No event with id 424242\.$"):
        rollback_cmd(str(invoice.pk), "424242", "--yes")
    assert len(issues(jira)) == 1


@pytest.fixture
def sent(monkeypatch):
    """Every vendor request sent: (method, url, whether the code held a transaction open then)."""
    seen, real = [], http.send

    def spy(method, url, **kwargs):
        seen.append((method, url, transport.open_transaction()))
        return real(method, url, **kwargs)

    monkeypatch.setattr(http, "send", spy)
    return seen


def only_reads_outside_transactions(calls):
    return all(method == "GET" and not in_transaction for method, _url, in_transaction in calls)


@pytest.mark.django_db
def test_admin_action_confirms_queues_and_the_worker_rolls_back(invoice, jira, staff_client, sent):
    """The web request only reads Jira (the change check), outside any transaction, and queues: no Jira write
    waits inside it holding the database (on SQLite the whole file). The worker deletes the issue."""
    url = reverse("admin:audit_event_changelist")
    data = {"action": "rollback_selected", "_selected_action": [invoice.pk]}

    confirm = staff_client.post(url, data)

    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert f"deletes issue {invoice.jira_key}" in page and 'name="post" value="yes"' in page
    assert len(issues(jira)) == 1  # nothing done yet

    done = staff_client.post(url, {**data, "post": "yes"}, follow=True)

    assert len(issues(jira)) == 1 and not deletes(jira), "nothing is deleted during the web request"
    assert sent and only_reads_outside_transactions(sent), sent
    assert "Rollback of 1 event queued" in done.content.decode()
    invoice.refresh_from_db()
    assert invoice.status == "succeeded"
    assert invoice.status_detail == "Rollback requested by admin:operator: queued for the worker."
    assert queued(ROLLBACK) == [(ROLLBACK, (invoice.pk,))]

    assert run_queued(ROLLBACK) == [f"Rolled back by admin:operator: deleted issue {invoice.jira_key}."]

    assert issues(jira) == []
    invoice.refresh_from_db()
    assert invoice.status == "rolled_back" and Link.objects.get(event=invoice).state == "rolled_back"
    assert invoice.attempt_set.get(action__startswith="DELETE").actor == "admin:operator"


@pytest.mark.django_db
def test_event_page_button_confirms_then_queues(invoice, jira, staff_client, sent):
    url = reverse("admin:audit_event_rollback", args=[invoice.pk])
    page = staff_client.get(reverse("admin:audit_event_change", args=[invoice.pk])).content.decode()
    assert url in page and "replay-event" in page

    confirm = staff_client.get(url)
    assert confirm.status_code == 200 and f"deletes issue {invoice.jira_key}" in confirm.content.decode()
    assert len(issues(jira)) == 1

    done = staff_client.post(url, {"post": "yes"})

    assert done.status_code == 302 and done["Location"].endswith(f"/{invoice.pk}/change/")
    assert len(issues(jira)) == 1 and only_reads_outside_transactions(sent), sent
    run_queued(ROLLBACK)
    assert issues(jira) == []


@pytest.mark.django_db
def test_a_change_in_jira_found_only_by_the_worker_is_not_overwritten_unasked(invoice, jira, staff_client):
    """Jira is changed between the request and the worker: the worker writes nothing and the event says why in
    plain words; rolling back again shows the change and asks; confirmed, the worker deletes the issue."""
    url = reverse("admin:audit_event_rollback", args=[invoice.pk])
    staff_client.post(url, {"post": "yes"})
    jira.state["issues"][invoice.jira_key]["fields"]["summary"] = "Renamed by a person in Jira"

    run_queued(ROLLBACK)

    assert len(issues(jira)) == 1 and not deletes(jira)
    invoice.refresh_from_db()
    assert invoice.status == "succeeded"
    assert invoice.status_detail == (
        f"Not rolled back: {invoice.jira_key} summary changed in Jira after admin:operator asked; nothing was "
        "overwritten. Roll back again to see the changes and confirm the overwrite."
    )
    page = staff_client.get(reverse("admin:audit_event_change", args=[invoice.pk])).content.decode()
    assert "nothing was overwritten" in page

    asked = staff_client.post(url, {"post": "yes"}).content.decode()
    assert "Renamed by a person in Jira" in asked and 'name="overwrite" value="yes"' in asked
    assert not queued(ROLLBACK)
    staff_client.post(url, {"post": "yes", "overwrite": "yes"})
    run_queued(ROLLBACK)
    assert issues(jira) == []
    invoice.refresh_from_db()
    assert invoice.status == "rolled_back"


@pytest.mark.django_db
def test_a_rollback_asked_twice_is_done_once_and_keeps_its_outcome(invoice, jira, staff_client):
    url = reverse("admin:audit_event_rollback", args=[invoice.pk])
    staff_client.post(url, {"post": "yes"})
    staff_client.post(url, {"post": "yes"})

    run_queued(ROLLBACK)

    assert len(deletes(jira)) == 1
    invoice.refresh_from_db()
    assert invoice.status == "rolled_back" and invoice.status_detail.startswith(
        "Rolled back by admin:operator"
    )


def test_rollback_page_needs_staff(client, db):
    response = client.get(reverse("admin:audit_event_rollback", args=[1]))
    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.django_db
def test_an_event_being_processed_is_refused(invoice, jira):
    from django.utils import timezone

    Event.objects.filter(pk=invoice.pk).update(status="processing", started_at=timezone.now())
    invoice.refresh_from_db()

    with pytest.raises(RollbackRefused, match="being processed right now"):
        rollback(invoice, actor="test")
    assert len(issues(jira)) == 1 and Link.objects.get(event=invoice).state == "created"
