"""Reconcile sees what webhooks missed, not only creates: records updated since the watermark whose last processed
state is older get an update event (when an enabled mapping or worklog rule wants one), and a time entry first seen
with its timer running, whose "timer stopped" delivery was lost, gets its worklog."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import Event
from connector.models import IssueMapping, WorklogRule
from connector.reconcile import reconcile
from connector.sandbox.freshbooks_lists import install_list_routes
from connector.sandbox.freshbooks_records import put
from tests.connector.handlers.test_worklogs import ENTRY, add_issue
from tests.connector.test_reconcile import eastern_now
from tests.processing import issues, process, worklogs

INVOICE = 987654
pytestmark = pytest.mark.django_db


def backdate(minutes):
    Event.objects.update(received_at=timezone.now() - timedelta(minutes=minutes))


@pytest.fixture
def synced_invoice(connected, fb, jira):
    """FIN-1 made from the invoice 20 minutes ago; invoice.update is mapped."""
    install_list_routes(fb)
    put(fb, "invoice", {**fb.samples["invoice"], "updated": eastern_now(20)})
    assert process(connected, "invoice.create", INVOICE).status == "succeeded"
    backdate(20)
    mapping = IssueMapping.objects.get(tenant=connected, event="invoice.create")
    mapping.pk, mapping.event, mapping.name = None, "invoice.update", "Invoice updated"
    mapping.save()
    return connected


def test_an_update_whose_delivery_was_lost_reaches_jira(synced_invoice, fb, jira):
    put(
        fb,
        "invoice",
        {**fb.samples["invoice"], "updated": eastern_now(1), "amount": {"amount": "75.00", "code": "CAD"}},
    )

    result = reconcile(synced_invoice, kinds=["invoice"], sync=True, actor="test")

    assert [(e.name, e.object_id, e.status) for e in result.created] == [
        ("invoice.update", str(INVOICE), "succeeded")
    ]
    (issue,) = issues(jira)
    assert issue["fields"]["summary"].endswith(": 75.00 CAD")
    again = reconcile(synced_invoice, kinds=["invoice"], sync=True, actor="test")
    assert again.created == [] and again.known == 1


def test_an_unchanged_record_or_one_without_an_update_mapping_gets_nothing(synced_invoice, fb, jira):
    assert reconcile(synced_invoice, kinds=["invoice"], dry_run=True).created == []  # nothing changed since
    IssueMapping.objects.filter(event="invoice.update").update(enabled=False)
    put(fb, "invoice", {**fb.samples["invoice"], "updated": eastern_now(1)})
    assert reconcile(synced_invoice, kinds=["invoice"], dry_run=True).created == []


def test_a_dry_run_names_the_update(synced_invoice, fb, jira):
    put(
        fb,
        "invoice",
        {**fb.samples["invoice"], "updated": eastern_now(1), "amount": {"amount": "75.00", "code": "CAD"}},
    )
    ((name, object_id, what),) = reconcile(synced_invoice, kinds=["invoice"], dry_run=True).created
    assert (name, object_id) == ("invoice.update", str(INVOICE)) and "75.00 CAD" in what


@pytest.fixture
def rule(connected, fb, jira):
    install_list_routes(fb)
    add_issue(jira, "FIN-7")
    WorklogRule.objects.create(
        tenant=connected, match_kind="project", match_value="654321", issue_key="FIN-7"
    )
    return connected


def listed_now(entry):
    """The entry as changed a minute ago (the fake lists time entries by `updated_at`)."""
    return {**entry, "updated_at": (timezone.now() - timedelta(minutes=1)).isoformat()}


def test_a_time_entry_first_seen_running_gets_its_worklog_when_the_stop_was_lost(rule, fb, jira):
    running = {**fb.samples["time_entry"], "duration": None, "timer": {"id": 1, "is_running": True}}
    put(fb, "time_entry", running)
    first = process(rule, "time_entry.create", ENTRY)
    assert first.status == "skipped" and "timer is still running" in first.status_detail
    backdate(10)
    stopped = {**fb.samples["time_entry"], "duration": 1800, "timer": {"id": 1, "is_running": False}}
    put(fb, "time_entry", listed_now(stopped))  # FreshBooks' time_entry.update was lost

    result = reconcile(rule, kinds=["time_entry"], sync=True, actor="test")

    assert [(e.name, e.status) for e in result.created] == [("time_entry.create", "succeeded")]
    (worklog,) = worklogs(jira)
    assert worklog["timeSpentSeconds"] == 1800
    assert reconcile(rule, kinds=["time_entry"], sync=True, actor="test").created == []


def test_a_logged_time_entry_changed_since_gets_its_worklog_updated(rule, fb, jira):
    assert process(rule, "time_entry.create", ENTRY).status == "succeeded"
    backdate(10)
    put(fb, "time_entry", listed_now({**fb.samples["time_entry"], "duration": 7200, "note": "Longer day"}))

    result = reconcile(rule, kinds=["time_entry"], sync=True, actor="test")

    assert [(e.name, e.status) for e in result.created] == [("time_entry.update", "succeeded")]
    (worklog,) = worklogs(jira)
    assert worklog["timeSpentSeconds"] == 7200
    assert reconcile(rule, kinds=["time_entry"], sync=True, actor="test").created == []
