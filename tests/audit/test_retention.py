"""Retention: prune_audit removes old finished events' content, keeps metadata and the ledger (exactly-once)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_q.models import Schedule

from audit import retention
from audit.models import Attempt, Event
from audit.schedules import SCHEDULES
from config.queueing import ensure_schedules
from connector.models import Link
from connector.replay import replay
from connector.rollback import refusal as rollback_refusal
from connector.sandbox.freshbooks_callbacks import delivery_fields, signed_delivery
from tenants.models import FreshBooksAccount, FreshBooksWebhook
from tests.processing import created_issues, make_event, process, run_queued

VERIFIER = "retention-verifier"


def age(event, days):
    Event.objects.filter(pk=event.pk).update(
        received_at=timezone.now() - timedelta(days=days), finished_at=timezone.now() - timedelta(days=days)
    )


def content(event):
    """What pruning removes, decrypted: (payload, record, [(request, response)] of its attempts)."""
    event = Event.objects.get(pk=event.pk)
    return event.payload, event.record, [(a.request, a.response) for a in event.attempt_set.all()]


def prune(*args):
    out = StringIO()
    call_command("prune_audit", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def old_issue(connected, fb, jira):
    """An invoice event processed 100 days ago: one issue in Jira, its ledger link, attempts with bodies."""
    event = process(connected, "invoice.create", 987654)
    assert event.status == "succeeded" and len(created_issues(jira)) == 1
    age(event, 100)
    return event


@pytest.mark.django_db
def test_dry_run_counts_and_changes_nothing(old_issue, connected):
    recent = make_event(connected, "invoice.create", 5, status="succeeded")
    before = content(old_issue)
    assert before[0] and before[1] and all(request and response for request, response in before[2])

    output = prune("--older-than", "90", "--dry-run")

    attempts = old_issue.attempt_set.count()
    assert f"Would prune 1 event(s) and the bodies of {attempts} attempt(s)" in output
    assert content(old_issue) == before
    assert Event.objects.get(pk=old_issue.pk).pruned_at is None
    assert content(recent)[0] is not None


@pytest.mark.django_db
def test_prune_removes_content_keeps_metadata_and_ledger(old_issue, connected):
    recent = make_event(connected, "invoice.create", 5, status="succeeded")
    old_queued = make_event(connected, "invoice.create", 6, status="queued")
    age(old_queued, 200)
    link = Link.objects.get(event=old_issue)
    meta = Event.objects.filter(pk=old_issue.pk).values(
        "name", "object_id", "status", "jira_key", "received_at"
    )[0]
    actions = list(old_issue.attempt_set.values_list("action", "http_status", "duration_ms"))

    output = prune("--older-than", "90")

    assert "Pruned 1 event(s)" in output
    pruned = Event.objects.get(pk=old_issue.pk)
    assert (pruned.payload, pruned.record, pruned.pruned_at is not None) == (None, None, True)
    assert all((a.request, a.response) == (None, "") for a in pruned.attempt_set.all())
    assert Event.objects.filter(pk=old_issue.pk).values(*meta)[0] == meta
    assert list(pruned.attempt_set.values_list("action", "http_status", "duration_ms")) == actions
    assert Link.objects.get(pk=link.pk).jira_issue_key == link.jira_issue_key == pruned.jira_key
    assert content(recent)[0] is not None and content(old_queued)[0] is not None  # not old / not finished
    assert "Pruned 0 event(s)" in prune("--older-than", "90")  # nothing left to do


@pytest.mark.django_db
def test_after_pruning_a_replayed_duplicate_delivery_creates_no_second_issue(
    old_issue, connected, jira, client
):
    prune("--older-than", "90")
    account = FreshBooksAccount.objects.get(tenant=connected)
    FreshBooksWebhook.objects.create(
        account=account, callback_id=3, event="invoice.create", uri="https://x.test/", verifier=VERIFIER,
        verified=True,
    )  # fmt: skip
    body, headers = signed_delivery(delivery_fields("invoice.create", "987654"), VERIFIER)
    response = client.post("/webhooks/freshbooks/", data=body, content_type="application/x-www-form-urlencoded",
                           headers=headers)  # fmt: skip
    assert response.status_code == 200

    assert run_queued("connector.tasks.process_event") == ["succeeded"]
    replay(Event.objects.filter(pk=old_issue.pk), actor="test", sync=True)

    assert len(created_issues(jira)) == 1
    assert set(Event.objects.values_list("jira_key", flat=True)) == {old_issue.jira_key}
    assert Link.objects.filter(object_id="987654").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("days", ["0", "-3", "ten"])
def test_bad_older_than_is_a_clear_error(days):
    with pytest.raises(CommandError, match="whole number of days"):
        prune("--older-than", days)


PRUNE = next(s for s in SCHEDULES if s.name == "prune-audit")


@pytest.mark.django_db
def test_daily_schedule_follows_the_setting_off_by_default(old_issue, settings):
    assert settings.AUDIT_RETENTION_DAYS == 0
    ensure_schedules(SCHEDULES)
    assert not Schedule.objects.filter(name=PRUNE.name).exists()
    assert retention.prune_scheduled().startswith("retention off")
    assert content(old_issue)[0] is not None

    settings.AUDIT_RETENTION_DAYS = 30
    ensure_schedules(SCHEDULES)
    ensure_schedules(SCHEDULES)
    schedule = Schedule.objects.get(name=PRUNE.name)
    assert (schedule.func, schedule.schedule_type) == ("audit.retention.prune_scheduled", Schedule.DAILY)
    assert retention.prune_scheduled().startswith("pruned 1 event(s)")
    assert content(old_issue)[0] is None

    settings.AUDIT_RETENTION_DAYS = 0
    ensure_schedules(SCHEDULES)
    assert not Schedule.objects.filter(name=PRUNE.name).exists()


@pytest.mark.django_db
def test_prune_works_in_batches_with_progress(connected):
    events = [make_event(connected, "invoice.create", n, status="skipped") for n in range(5)]
    for event in events:
        age(event, 40)
        Attempt.objects.create(event=event, action="GET /x", request={"url": "x"}, response="body")
    output = prune("--older-than", "30", "--batch-size", "2")
    assert output.count("pruned so far") == 3
    assert "Pruned 5 event(s) and the bodies of 5 attempt(s)" in output


@pytest.mark.django_db
def test_rollback_of_a_pruned_update_says_retention_removed_what_it_overwrote(connected):
    event = make_event(connected, "invoice.update", 987654, status="succeeded")
    Attempt.objects.create(
        event=event, action="PUT /rest/api/3/issue/FIN-1", http_status=204,
        previous={"kind": "issue", "key": "FIN-1", "before": {"summary": "Old"}, "after": {"summary": "New"}},
    )  # fmt: skip
    age(event, 100)
    assert rollback_refusal(event) == ""

    prune("--older-than", "90")

    event.refresh_from_db()
    assert event.attempt_set.get().previous is None  # every encrypted field of the attempt is cleared
    assert "removed by retention" in rollback_refusal(event)
