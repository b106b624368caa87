"""Replay for operators: by received-time window and event name, dry run, progress, who asked, and the
Failed events admin list grouped by reason."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ

from audit.models import Event
from tests.processing import make_event


def replay_cmd(*args):
    out = StringIO()
    call_command("replay_events", *args, stdout=out)
    return out.getvalue()


def received(event, hours_ago):
    Event.objects.filter(pk=event.pk).update(received_at=timezone.now() - timedelta(hours=hours_ago))
    return event


def failed(tenant, name, object_id, detail):
    event = make_event(tenant, name, object_id, status="failed")
    event.status_detail = detail
    event.save(update_fields=["status_detail"])  # as process_event's finish() does: the reason is stored
    return event


@pytest.mark.django_db
def test_replay_by_received_window_takes_only_the_events_inside_it(tenant):
    old = received(make_event(tenant, "invoice.create", 1, status="failed"), 30)
    inside = received(make_event(tenant, "invoice.create", 2, status="failed"), 5)
    recent = received(make_event(tenant, "invoice.create", 3, status="failed"), 1)
    since = (timezone.now() - timedelta(hours=10)).isoformat()
    until = (timezone.now() - timedelta(hours=2)).isoformat()

    out = replay_cmd("--since", since, "--until", until)

    assert f"Queued #{inside.pk} invoice.create 2" in out and "Queued 1 event(s), refused 0." in out
    statuses = dict(Event.objects.values_list("pk", "status"))
    assert statuses == {old.pk: "failed", inside.pk: "queued", recent.pk: "failed"}
    assert OrmQ.objects.count() == 1


@pytest.mark.django_db
def test_replay_by_event_name_records_who_asked(tenant):
    wanted = make_event(tenant, "bill.create", 1803, status="failed")
    other = make_event(tenant, "invoice.create", 1803, status="failed")

    out = replay_cmd("--event", "bill.create", "--status", "failed")

    assert f"Queued #{wanted.pk} bill.create 1803" in out and f"#{other.pk}" not in out
    wanted.refresh_from_db()
    assert wanted.replay_requested_by.startswith("command") and wanted.replay_requested_at is not None
    assert Event.objects.get(pk=other.pk).status == "failed"


@pytest.mark.django_db
def test_dry_run_lists_what_would_be_replayed_and_refused_and_changes_nothing(tenant):
    retry = make_event(tenant, "invoice.create", 1, status="failed")
    undone = make_event(tenant, "invoice.create", 2, status="rolled_back")
    before = list(Event.objects.values())

    out = replay_cmd("--tenant", "acme", "--dry-run")

    assert f"Would replay #{retry.pk} invoice.create 1" in out
    assert f"Would refuse #{undone.pk} invoice.create 2: it is rolled back" in out
    assert "Would replay 1 event(s), refused 1." in out
    assert list(Event.objects.values()) == before and OrmQ.objects.count() == 0


@pytest.mark.django_db
def test_replay_of_thousands_reports_progress(tenant):
    Event.objects.bulk_create(
        Event(tenant=tenant, name="expense.create", object_id=str(n), status="failed") for n in range(1, 251)
    )

    out = replay_cmd("--status", "failed", "--dry-run")

    assert [line for line in out.splitlines() if line.startswith("…")] == [
        "… 100/250 event(s)",
        "… 200/250 event(s)",
        "… 250/250 event(s)",
    ]
    assert "Would replay 250 event(s), refused 0." in out


@pytest.mark.django_db
def test_failed_events_list_groups_by_reason_and_replays_a_selection(tenant, staff_client):
    issue_type = "Jira POST /rest/api/3/issue → 400: issuetype: Specify a valid issue type"
    one = failed(tenant, "invoice.create", 11, issue_type)
    two = failed(tenant, "invoice.create", 12, issue_type + " — gave up after 5 attempts; replay when fixed")
    gone = failed(tenant, "bill.create", 13, "Jira PUT /rest/api/3/issue/FIN-12 → 404: Issue does not exist")
    fine = make_event(tenant, "invoice.create", 14, status="succeeded")
    url = reverse("admin:audit_failedevent_changelist")

    page = staff_client.get(url).content.decode()

    assert f"{issue_type} (2)" in page.replace("&gt;", ">")
    assert "Jira PUT /rest/api/3/issue/&lt;issue&gt; → 404: Issue does not exist (1)" in page
    assert f">#{fine.pk}<" not in page
    grouped = staff_client.get(url, {"reason": issue_type})
    assert sorted(e.pk for e in grouped.context["cl"].result_list) == [one.pk, two.pk]

    response = staff_client.post(
        url, {"action": "replay_selected", "_selected_action": [one.pk, two.pk]}, follow=True
    )

    assert "Queued 2 event(s) for replay" in response.content.decode()
    statuses = dict(Event.objects.values_list("pk", "status"))
    assert statuses[one.pk] == statuses[two.pk] == "queued" and statuses[gone.pk] == "failed"
    assert Event.objects.get(pk=one.pk).replay_requested_by == "admin:operator"
    (entry,) = LogEntry.objects.filter(object_id=str(one.pk))
    assert entry.user.username == "operator" and "Replay requested by admin:operator" in entry.change_message
    assert [e.pk for e in staff_client.get(url).context["cl"].result_list] == [gone.pk]
