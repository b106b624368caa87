"""Full rollback: updates and deletions are undone from what the connector kept before writing, and a later
edit in Jira is never overwritten without the operator's confirmation (function, command, admin)."""

import io
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from audit.models import Event
from connector.jira.adf import to_text
from connector.models import IssueMapping, Link, WorklogRule
from connector.replay import replay
from connector.rollback import RollbackConflict, rollback
from connector.sandbox.freshbooks_records import put
from connector.schedules import ROLLBACK
from tests.processing import issues, process, run_queued, worklogs

INVOICE, ENTRY = 987654, 123456
ORIGINAL = "Invoice ACM0002 for Gordon Shumway: 41.94 CAD"
UPDATED = "Invoice ACM0002 for Gordon Shumway: 99.00 CAD"


def puts(jira):
    return jira.calls("PUT")


@pytest.fixture
def updated_invoice(connected, fb, jira):
    """FIN-1 created from the invoice, then updated by an invoice.update event (amount 41.94 → 99.00)."""
    created = process(connected, "invoice.create", INVOICE)
    mapping = IssueMapping.objects.get(tenant=connected, event="invoice.create")
    mapping.pk, mapping.event, mapping.name = None, "invoice.update", "Invoice updated"
    mapping.save()
    put(fb, "invoice", {**fb.samples["invoice"], "amount": {"amount": "99.00", "code": "CAD"}})
    update = process(connected, "invoice.update", INVOICE)
    assert update.status == "succeeded" and update.jira_key == created.jira_key == "FIN-1"
    assert issues(jira)[0]["fields"]["summary"] == UPDATED
    return update


@pytest.fixture
def logged(connected, fb, jira):
    """A worklog on FIN-7 for the fixture time entry (9840 s, "Slow day")."""
    jira.state["issues"]["FIN-7"] = {"id": "30000", "key": "FIN-7", "fields": {"summary": "Work"},
                                     "properties": {}, "hidden_searches": 0, "created": 0}  # fmt: skip
    WorklogRule.objects.create(
        tenant=connected, match_kind="project", match_value="654321", issue_key="FIN-7"
    )
    assert process(connected, "time_entry.create", ENTRY).status == "succeeded"
    (worklog,) = worklogs(jira)
    return worklog


@pytest.mark.django_db
def test_rollback_of_an_issue_update_puts_the_fields_back(updated_invoice, jira):
    done = rollback(updated_invoice, actor="test")

    (issue,) = issues(jira)
    assert issue["fields"]["summary"] == ORIGINAL
    assert "mlc-acme-invoice-987654" in issue["fields"]["labels"]  # the ledger's label is kept
    assert done == ["restored summary, description, labels of FIN-1"]
    updated_invoice.refresh_from_db()
    assert updated_invoice.status == "rolled_back"
    assert Link.objects.get(object_id=str(INVOICE)).state == "created"  # the issue stays ours
    assert replay(Event.objects.filter(pk=updated_invoice.pk), actor="t").refused[0][1] == "it is rolled back"


@pytest.mark.django_db
def test_a_later_edit_in_jira_is_not_overwritten_without_confirmation(updated_invoice, jira):
    jira.state["issues"]["FIN-1"]["fields"]["summary"] = "Renamed by a person in Jira"
    writes_before = len(puts(jira))

    with pytest.raises(RollbackConflict) as caught:
        rollback(updated_invoice, actor="test")

    assert caught.value.differences == [("FIN-1", "summary", UPDATED, "Renamed by a person in Jira")]
    assert len(puts(jira)) == writes_before  # nothing written
    assert issues(jira)[0]["fields"]["summary"] == "Renamed by a person in Jira"
    updated_invoice.refresh_from_db()
    assert updated_invoice.status == "succeeded"

    rollback(updated_invoice, actor="test", overwrite=True)  # the operator confirmed

    assert issues(jira)[0]["fields"]["summary"] == ORIGINAL
    updated_invoice.refresh_from_db()
    assert "over changes made in Jira since" in updated_invoice.status_detail


@pytest.mark.django_db
def test_admin_shows_the_difference_and_overwrites_only_when_confirmed(updated_invoice, jira, staff_client):
    jira.state["issues"]["FIN-1"]["fields"]["summary"] = "Renamed in Jira"
    url = reverse("admin:audit_event_changelist")
    data = {"action": "rollback_selected", "_selected_action": [updated_invoice.pk], "post": "yes"}

    asked = staff_client.post(url, data)

    page = asked.content.decode()
    assert asked.status_code == 200 and "changed in Jira" in page
    assert "Renamed in Jira" in page and UPDATED in page and 'name="overwrite" value="yes"' in page
    assert issues(jira)[0]["fields"]["summary"] == "Renamed in Jira"

    done = staff_client.post(url, {**data, "overwrite": "yes"}, follow=True)

    assert "Rollback of 1 event queued" in done.content.decode()
    assert issues(jira)[0]["fields"]["summary"] == "Renamed in Jira", "written by the worker, not the request"
    (detail,) = run_queued(ROLLBACK)
    assert detail.startswith(
        "Rolled back by admin:operator over changes made in Jira since: restored summary"
    )
    assert issues(jira)[0]["fields"]["summary"] == ORIGINAL


@pytest.mark.django_db
def test_command_shows_the_difference_and_refuses_unattended_unless_overwrite(
    updated_invoice, jira, monkeypatch
):
    jira.state["issues"]["FIN-1"]["fields"]["summary"] = "Renamed in Jira"
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    out = StringIO()

    with pytest.raises(CommandError, match="could not be rolled back"):
        call_command("rollback_event", str(updated_invoice.pk), "--yes", stdout=out)

    assert "FIN-1 summary: the connector wrote" in out.getvalue() and "'Renamed in Jira'" in out.getvalue()
    assert issues(jira)[0]["fields"]["summary"] == "Renamed in Jira"
    call_command("rollback_event", str(updated_invoice.pk), "--yes", "--overwrite", stdout=out)
    assert issues(jira)[0]["fields"]["summary"] == ORIGINAL
    assert updated_invoice.attempt_set.filter(action__startswith="PUT", actor__startswith="command").exists()


@pytest.mark.django_db
def test_rollback_of_a_worklog_update_restores_the_worklog(connected, fb, jira, logged):
    put(fb, "time_entry", {**fb.samples["time_entry"], "duration": 600, "note": "Edited"})
    update = process(connected, "time_entry.update", ENTRY)
    assert update.status == "succeeded" and worklogs(jira)[0]["timeSpentSeconds"] == 600

    done = rollback(update, actor="test")

    (worklog,) = worklogs(jira)
    assert done == [f"restored worklog {logged['id']} on FIN-7"]
    assert worklog["timeSpentSeconds"] == 9840 and worklog["started"] == logged["started"]
    assert to_text(worklog["comment"]) == "Slow day"


@pytest.mark.django_db
def test_a_worklog_changed_in_jira_since_is_a_conflict(connected, fb, jira, logged):
    put(fb, "time_entry", {**fb.samples["time_entry"], "duration": 600})
    update = process(connected, "time_entry.update", ENTRY)
    jira.state["worklogs"]["FIN-7"][0]["timeSpentSeconds"] = 1200  # someone corrected it in Jira

    with pytest.raises(RollbackConflict) as caught:
        rollback(update, actor="test")

    assert caught.value.differences == [(f"worklog {logged['id']} on FIN-7", "timeSpentSeconds", 600, 1200)]
    assert worklogs(jira)[0]["timeSpentSeconds"] == 1200


@pytest.mark.django_db
def test_rollback_of_a_time_entry_delete_re_creates_the_worklog(connected, fb, jira, logged):
    deleted = process(connected, "time_entry.delete", ENTRY)
    assert deleted.status == "succeeded" and worklogs(jira) == []

    done = rollback(deleted, actor="test")

    (worklog,) = worklogs(jira)
    assert done == ["re-created the deleted worklog on FIN-7"]
    assert (worklog["timeSpentSeconds"], worklog["started"]) == (9840, logged["started"])
    assert to_text(worklog["comment"]) == "Slow day"
    assert worklog["properties"] == logged["properties"]  # marked like the original: the ledger finds it
    link = Link.objects.get(object_id=str(ENTRY))
    assert link.state == "created" and link.jira_worklog_id == worklog["id"] != logged["id"]

    put(fb, "time_entry", {**fb.samples["time_entry"], "duration": 120})
    assert process(connected, "time_entry.update", ENTRY).status == "succeeded"
    assert [w["timeSpentSeconds"] for w in worklogs(jira)] == [120]  # the re-created worklog is the link's


@pytest.mark.django_db
def test_rollback_of_a_delete_whose_issue_is_gone_is_refused_and_writes_nothing(connected, fb, jira, logged):
    deleted = process(connected, "time_entry.delete", ENTRY)
    del jira.state["issues"]["FIN-7"]

    with pytest.raises(RollbackConflict, match="FIN-7"):
        rollback(deleted, actor="test")

    assert (
        jira.calls("POST", r"/worklog$")[1:] == []
        and Link.objects.get(object_id=str(ENTRY)).state == "deleted"
    )


@pytest.mark.django_db
def test_the_kept_values_are_encrypted_and_shown_on_the_attempt_page(updated_invoice, staff_client):
    from django.db import connection

    attempt = updated_invoice.attempt_set.get(action__startswith="PUT")
    assert (
        attempt.previous["before"]["summary"] == ORIGINAL and attempt.previous["after"]["summary"] == UPDATED
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT previous FROM audit_attempt WHERE id = %s", [attempt.pk])
        stored = cursor.fetchone()[0]
    assert "Gordon" not in str(stored)  # ciphertext at rest

    page = staff_client.get(reverse("admin:audit_attempt_change", args=[attempt.pk])).content.decode()

    assert "Overwritten values, kept for rollback" in page and "41.94 CAD" in page


@pytest.mark.django_db
def test_without_the_sensitive_permission_the_differences_and_kept_values_stay_hidden(
    updated_invoice, jira, client, django_user_model
):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("roller", password="pass-123456789", is_staff=True)
    for codename in ("view_event", "view_attempt", "rollback_event"):
        user.user_permissions.add(Permission.objects.get(content_type__app_label="audit", codename=codename))
    client.force_login(user)
    jira.state["issues"]["FIN-1"]["fields"]["summary"] = "Renamed in Jira"
    url = reverse("admin:audit_event_changelist")

    asked = client.post(
        url, {"action": "rollback_selected", "_selected_action": [updated_invoice.pk], "post": "yes"}
    )
    attempt = updated_invoice.attempt_set.get(action__startswith="PUT")
    kept = client.get(reverse("admin:audit_attempt_change", args=[attempt.pk])).content.decode()

    page = asked.content.decode()
    assert "changed in Jira" in page and "FIN-1" in page and "<code>summary</code>" in page
    assert "Renamed in Jira" not in page and "99.00 CAD" not in page
    assert "Overwritten values" not in kept and "41.94 CAD" not in kept
    assert issues(jira)[0]["fields"]["summary"] == "Renamed in Jira"
