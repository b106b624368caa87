"""No genuine edit dropped: FreshBooks sends no delivery id, so the same user editing the same record twice within
the replay window sends two identical signed deliveries. Once the first has run, the second re-reads the record
and is skipped only when nothing changed; a replay of a delivery still queued or running adds nothing."""

import pytest

from audit.models import Event
from connector.models import IssueMapping, WorklogRule
from connector.sandbox.freshbooks_callbacks import delivery_fields, signed_delivery
from connector.sandbox.freshbooks_records import put
from tenants.models import FreshBooksAccount, FreshBooksWebhook
from tests.connector.handlers.test_worklogs import ENTRY, add_issue
from tests.processing import issues, process, run_queued, worklogs

PROCESS = "connector.tasks.process_event"
pytestmark = pytest.mark.django_db


def deliver(client, name, object_id):
    """The same signed FreshBooks delivery (same user) through POST /webhooks/freshbooks/; its answer."""
    account = FreshBooksAccount.objects.get()
    FreshBooksWebhook.objects.get_or_create(
        account=account, callback_id=abs(hash(name)) % 10**6, event=name,
        defaults={"uri": "https://x.test/", "verifier": "the-verifier", "verified": True},
    )  # fmt: skip
    fields = delivery_fields(name, str(object_id), account.account_id, account.business_id)
    body, headers = signed_delivery(fields, "the-verifier")
    response = client.post(
        "/webhooks/freshbooks/", data=body, content_type="application/x-www-form-urlencoded", headers=headers
    )
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def updates(connected, fb, jira):
    """invoice.create made FIN-1; an enabled invoice.update mapping keeps it in step."""
    assert process(connected, "invoice.create", 987654).status == "succeeded"
    mapping = IssueMapping.objects.get(tenant=connected, event="invoice.create")
    mapping.pk, mapping.event, mapping.name = None, "invoice.update", "Invoice updated"
    mapping.save()
    return connected


def summary(jira):
    (issue,) = issues(jira)
    return issue["fields"]["summary"]


def test_the_same_users_second_edit_within_the_window_reaches_jira(updates, fb, jira, client):
    put(fb, "invoice", {**fb.samples["invoice"], "amount": {"amount": "50.00", "code": "CAD"}})
    assert deliver(client, "invoice.update", 987654)["status"] == "queued"
    assert run_queued(PROCESS) == ["succeeded"]
    assert summary(jira).endswith(": 50.00 CAD")

    put(fb, "invoice", {**fb.samples["invoice"], "amount": {"amount": "60.00", "code": "CAD"}})
    second = deliver(client, "invoice.update", 987654)  # byte-identical signed body, a minute later

    assert second["status"] == "queued"
    assert run_queued(PROCESS) == ["succeeded"]
    assert summary(jira).endswith(": 60.00 CAD")


def test_a_repeat_with_nothing_changed_is_skipped_after_reading_the_record(updates, fb, jira, client):
    deliver(client, "invoice.update", 987654)
    run_queued(PROCESS)
    reads = len(fb.calls("GET", r"/invoices/invoices/987654$"))
    writes = len(jira.calls("PUT"))

    deliver(client, "invoice.update", 987654)
    assert run_queued(PROCESS) == ["skipped"]

    repeat = Event.objects.latest("id")
    assert "nothing changed in FreshBooks since event #" in repeat.status_detail
    assert len(fb.calls("GET", r"/invoices/invoices/987654$")) == reads + 1  # it did look
    assert len(jira.calls("PUT")) == writes


def test_a_replay_of_a_delivery_still_queued_adds_nothing(updates, fb, jira, client):
    first = deliver(client, "invoice.update", 987654)
    answers = [deliver(client, "invoice.update", 987654) for _ in range(5)]

    assert answers == [{"status": "replay", "event": first["event"]}] * 5
    assert Event.objects.filter(name="invoice.update").count() == 1
    assert run_queued(PROCESS) == ["succeeded"]


def test_a_second_edit_of_a_time_entry_reaches_its_worklog(connected, fb, jira, client):
    add_issue(jira, "FIN-7")
    WorklogRule.objects.create(
        tenant=connected, match_kind="project", match_value="654321", issue_key="FIN-7"
    )
    put(fb, "time_entry", {**fb.samples["time_entry"], "duration": 1800})
    deliver(client, "time_entry.update", ENTRY)
    assert run_queued(PROCESS) == ["succeeded"]

    put(fb, "time_entry", {**fb.samples["time_entry"], "duration": 2700})
    assert deliver(client, "time_entry.update", ENTRY)["status"] == "queued"
    assert run_queued(PROCESS) == ["succeeded"]

    (worklog,) = worklogs(jira)
    assert worklog["timeSpentSeconds"] == 2700


def test_a_clients_second_edit_is_read_again(connected, fb, jira, client):
    jira.state["users"] += [
        {"accountId": "acc-1", "emailAddress": "one@example.test", "displayName": "One"},
        {"accountId": "acc-2", "emailAddress": "two@example.test", "displayName": "Two"},
    ]
    client_id = fb.samples["client"]["id"]
    put(fb, "client", {**fb.samples["client"], "email": "one@example.test"})
    deliver(client, "client.update", client_id)
    run_queued(PROCESS)

    put(fb, "client", {**fb.samples["client"], "email": "two@example.test"})
    deliver(client, "client.update", client_id)
    run_queued(PROCESS)

    assert "acc-2" in Event.objects.latest("id").status_detail
