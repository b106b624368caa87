"""Replay (function, command, admin action) and the mapping preview in the admin."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django_q.models import OrmQ

from audit.models import Event
from connector.models import IssueMapping
from connector.replay import replay
from tests.processing import created_issues, issues, make_event, process


def replay_cmd(*args):
    out = StringIO()
    call_command("replay_events", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_replay_of_a_succeeded_event_never_duplicates_and_keeps_history(connected, fb, jira):
    event = process(connected, "invoice.create", 987654)
    first_attempts = event.attempt_set.count()

    result = replay(Event.objects.filter(pk=event.pk), actor="test", sync=True)

    event.refresh_from_db()
    assert [e.pk for e in result.queued] == [event.pk]
    assert event.status == "succeeded" and event.attempts == 2
    assert len(issues(jira)) == 1 and len(created_issues(jira)) == 1
    assert event.attempt_set.count() > first_attempts  # the first run's attempts are still there
    assert event.attempt_set.filter(actor="test").exists()


@pytest.mark.django_db
def test_replay_refuses_events_being_processed(connected, fb, jira):
    from django.utils import timezone

    busy = make_event(connected, "invoice.create", 987654, status="processing")
    Event.objects.filter(pk=busy.pk).update(started_at=timezone.now())

    result = replay(Event.objects.filter(pk=busy.pk), actor="test", sync=True)

    assert not result.queued and result.refused[0][1] == "it is being processed right now"
    assert not created_issues(jira)


@pytest.mark.django_db
def test_command_replays_failed_events_of_a_tenant(connected, fb, jira):
    IssueMapping.objects.filter(tenant=connected, event="invoice.create").update(issue_type="Story")
    failed = process(connected, "invoice.create", 987654)
    other = process(connected, "expense.create", 23456)
    assert failed.status == "failed" and other.status == "succeeded"
    IssueMapping.objects.filter(tenant=connected, event="invoice.create").update(issue_type="Task")

    out = replay_cmd("--tenant", "acme", "--status", "failed", "--sync")

    failed.refresh_from_db()
    assert f"Processed #{failed.pk} invoice.create 987654 → succeeded {failed.jira_key}" in out
    assert f"#{other.pk}" not in out
    assert "Processed 1 event(s), refused 0." in out
    assert failed.status == "succeeded" and len(issues(jira)) == 2


@pytest.mark.django_db
def test_command_queues_for_the_worker_by_default(connected, fb, jira):
    event = process(connected, "expense.create", 777)  # skipped: the record is gone
    before = OrmQ.objects.count()

    out = replay_cmd("--id", str(event.pk))

    event.refresh_from_db()
    assert f"Queued #{event.pk} expense.create 777" in out
    assert event.status == "queued" and event.status_detail.startswith("Replay requested by command")
    assert event.status_detail.endswith("(was skipped).") and event.replay_requested_by.startswith("command")
    assert OrmQ.objects.count() == before + 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        ((), "Select events with --tenant, --status, --event, --reason, --since/--until and/or --id"),
        (("--since", "last week"), "--since 'last week' is not an ISO 8601 date"),
        (("--tenant", "nope"), "No tenant with slug 'nope'."),
        (("--id", "424242", "424243"), "No event with id 424242, 424243."),
    ],
)
def test_command_errors_are_one_clear_line(connected, args, message):
    with pytest.raises(CommandError, match=message.replace(".", r"\.").replace("(", r"\(")):
        replay_cmd(*args)


@pytest.mark.django_db
def test_admin_action_replays_selected_events(connected, fb, jira, staff_client):
    event = process(connected, "expense.create", 777)
    url = reverse("admin:audit_event_changelist")

    response = staff_client.post(
        url, {"action": "replay_selected", "_selected_action": [event.pk]}, follow=True
    )

    assert response.status_code == 200
    assert f"Queued 1 event(s) for replay: #{event.pk}." in response.content.decode()
    event.refresh_from_db()
    assert event.status == "queued" and "admin:operator" in event.status_detail


@pytest.mark.django_db
@pytest.mark.parametrize("jira", ["cloud", "server"], indirect=True)
def test_mapping_preview_shows_the_exact_jira_request_body(connected, jira, staff_client):
    mapping = IssueMapping.objects.get(tenant=connected, event="invoice.create")
    change = staff_client.get(reverse("admin:connector_issuemapping_change", args=[mapping.pk]))
    preview_url = reverse("admin:connector_issuemapping_preview", args=[mapping.pk])
    assert preview_url in change.content.decode()
    assert "invoice_number" in change.content.decode()  # the context keys are documented on the page

    response = staff_client.get(preview_url)

    assert response.status_code == 200
    body = json.loads(response.context["body_json"])
    fields = body["fields"]
    assert fields["summary"] == "Invoice ACM0002 for Gordon Shumway: 41.94 CAD"
    assert fields["project"] == {"key": "FIN"} and fields["issuetype"] == {"name": "Task"}
    assert fields["labels"] == ["freshbooks", "invoice", "mlc-acme-invoice-987654"]
    assert body["properties"][0]["key"] == "ml-connector"
    if jira.deployment == "cloud":
        assert fields["description"]["type"] == "doc"
    else:
        assert fields["description"].startswith("Invoice ACM0002 was created in FreshBooks.")
    assert "Gordon Shumway" in response.content.decode()
    assert not jira.requests  # a preview calls nobody


@pytest.mark.django_db
def test_preview_reports_template_errors_and_kinds_without_samples(connected, staff_client):
    mapping = IssueMapping.objects.get(tenant=connected, event="bill.create")
    IssueMapping.objects.filter(pk=mapping.pk).update(summary_template="{{ amount|date:'Y' }}{% endif %}")
    response = staff_client.get(reverse("admin:connector_issuemapping_preview", args=[mapping.pk]))
    assert response.status_code == 200 and "Template error" in response.content.decode()

    odd = IssueMapping.objects.create(tenant=connected, name="Estimates", event="estimate.create",
                                      project_key="FIN", summary_template="x")  # fmt: skip
    response = staff_client.get(reverse("admin:connector_issuemapping_preview", args=[odd.pk]))
    assert response.status_code == 200 and "No sample record for" in response.content.decode()


def test_preview_needs_staff(client, db):
    response = client.get(reverse("admin:connector_issuemapping_preview", args=[1]))
    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.django_db
def test_command_sync_survives_a_bug_in_one_event_and_reports_it(connected, fb, jira, monkeypatch):
    """A bug while processing one event marks it failed; the command goes on (no traceback) — review-sync.

    The handler is replaced to stand for "a bug in our code": nothing else can make process_event raise."""
    from connector import handlers

    def broken(job):
        raise RuntimeError("boom")

    monkeypatch.setitem(handlers.HANDLERS, "bill", broken)
    bad = make_event(connected, "bill.create", 1803, status="failed")
    good = make_event(connected, "invoice.create", 987654, status="failed")

    out = replay_cmd("--status", "failed", "--sync")

    assert (
        f"#{bad.pk} bill.create 1803 → failed" in out
        and f"#{good.pk} invoice.create 987654 → succeeded" in out
    )
    bad.refresh_from_db()
    assert bad.status_detail == "Internal error: RuntimeError: boom"
    assert len(issues(jira)) == 1
