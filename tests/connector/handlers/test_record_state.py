"""FreshBooks soft deletes: a record FreshBooks still serves with ``"vis_state": 1`` (deleted) writes nothing to
Jira, whether it is the event's own record or a related one the handler relies on; archived (2) is synced with
a note (research row 01: a deleted invoice became issue FIN-1)."""

import pytest

from connector.models import IssueMapping, Link
from tests.processing import created_issues, process

both = pytest.mark.parametrize("jira", ["cloud", "server"], indirect=True)


def jira_writes(jira):
    return [r for r in jira.requests if r.method in ("POST", "PUT", "DELETE")]


@both
@pytest.mark.django_db
def test_a_deleted_invoice_is_skipped_with_a_reason_and_nothing_reaches_jira(connected, fb, jira):
    fb.samples["invoice"]["vis_state"] = 1

    event = process(connected, "invoice.create", 987654)

    assert event.status == "skipped"
    assert event.status_detail == "invoice 987654 was deleted in FreshBooks"
    assert not jira.requests and not Link.objects.exists()


@pytest.mark.django_db
def test_an_update_of_a_deleted_invoice_leaves_its_issue_alone(connected, fb, jira):
    assert process(connected, "invoice.create", 987654).status == "succeeded"
    IssueMapping.objects.create(tenant=connected, name="upd", event="invoice.update", project_key="FIN",
                                summary_template="changed {{ invoice_number }}")  # fmt: skip
    fb.samples["invoice"]["vis_state"] = 1

    event = process(connected, "invoice.update", 987654)

    assert event.status == "skipped" and "was deleted in FreshBooks" in event.status_detail
    assert not jira.calls("PUT")


@pytest.mark.django_db
def test_a_payment_on_a_deleted_invoice_is_skipped(connected, fb, jira):
    invoice_id = fb.samples["payment"]["invoiceid"]
    fb.samples["invoice"]["vis_state"] = "1"

    event = process(connected, "payment.create", fb.samples["payment"]["id"])

    assert event.status == "skipped"
    assert event.status_detail == f"invoice {invoice_id} was deleted in FreshBooks"
    assert not jira_writes(jira)


@pytest.mark.django_db
def test_the_deleted_client_of_a_reporter_match_stops_the_issue(connected, fb, jira):
    IssueMapping.objects.filter(tenant=connected, event="invoice.create").update(reporter_from="client")
    fb.samples["client"]["vis_state"] = 1

    event = process(connected, "invoice.create", 987654)

    assert event.status == "skipped"
    assert event.status_detail == f"client {fb.samples['client']['id']} was deleted in FreshBooks"
    assert not jira_writes(jira)


@pytest.mark.django_db
def test_an_expense_whose_embedded_category_is_deleted_is_skipped(connected, fb, jira):
    fb.samples["expense_category"]["vis_state"] = 1

    event = process(connected, "expense.create", fb.samples["expense"]["id"])

    assert event.status == "skipped" and "expense category" in event.status_detail
    assert "was deleted in FreshBooks" in event.status_detail
    assert not jira_writes(jira)


@pytest.mark.django_db
def test_a_deleted_client_event_matches_no_user(connected, fb, jira):
    fb.samples["client"]["vis_state"] = 1
    event = process(connected, "client.update", fb.samples["client"]["id"])
    assert event.status == "skipped" and "was deleted in FreshBooks" in event.status_detail
    assert not jira.requests


@pytest.mark.django_db
def test_an_archived_invoice_is_still_synced_with_a_note(connected, fb, jira):
    fb.samples["invoice"]["vis_state"] = 2

    event = process(connected, "invoice.create", 987654)

    assert event.status == "succeeded", event.status_detail
    assert len(created_issues(jira)) == 1
    assert "invoice 987654 is archived in FreshBooks" in event.status_detail
