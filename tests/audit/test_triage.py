"""Triage at scale (issue 23, point 2): failures grouped by a stored reason in the database, a large replay
queued as one task with its progress, resolve without retry and assign, and the Failed events admin opening
failed events only."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import Event, ReplayBatch
from connector import replay
from connector.schedules import REPLAY_BATCH
from tests.processing import make_event, queued, run_queued

URL = "/admin/audit/failedevent/"
ISSUE_TYPE = "Jira POST /rest/api/3/issue → 400: issuetype: Specify a valid issue type"
GONE = "Jira PUT /rest/api/3/issue/FIN-12 → 404: Issue does not exist"


def failed(tenant, object_id, detail=ISSUE_TYPE):
    event = make_event(tenant, "invoice.create", object_id, status="failed")
    event.status_detail = detail
    event.save(update_fields=["status_detail"])
    return event


def bulk_failed(tenant, count, detail=ISSUE_TYPE, reason=None):
    Event.objects.bulk_create(
        Event(tenant=tenant, name="invoice.create", object_id=str(n), status="failed", status_detail=detail,
              failure_reason=reason if reason is not None else detail)
        for n in range(1, count + 1)
    )  # fmt: skip


@pytest.mark.django_db
def test_the_reason_is_stored_when_an_event_fails_and_cleared_when_it_no_longer_is(tenant):
    event = failed(
        tenant, 1, "Jira PUT /rest/api/3/issue/FIN-77 → 404: Issue does not exist — gave up after 5"
    )
    assert Event.objects.get(pk=event.pk).failure_reason == (
        "Jira PUT /rest/api/3/issue/<issue> → 404: Issue does not exist"
    )
    replay.replay(Event.objects.filter(pk=event.pk), actor="admin:ann")
    assert Event.objects.get(pk=event.pk).failure_reason == ""


@pytest.mark.django_db
def test_failed_events_are_grouped_by_reason_in_the_database(tenant, staff_client):
    """Today the list reads every failure's detail into Python to group them (3.1 s for 60,000)."""
    bulk_failed(tenant, 130)  # more than a page
    failed(tenant, 999, GONE)

    with CaptureQueriesContext(connection) as ctx:
        page = staff_client.get(URL).content.decode()

    assert f"{ISSUE_TYPE} (130)" in page.replace("&gt;", ">")
    assert "Jira PUT /rest/api/3/issue/&lt;issue&gt; → 404: Issue does not exist (1)" in page
    details = [q["sql"] for q in ctx.captured_queries if re.search(r'SELECT .*"status_detail"', q["sql"])]
    assert all("LIMIT" in sql for sql in details), details  # no query reads every failure's detail
    grouped = staff_client.get(URL, {"reason": GONE.replace("FIN-12", "<issue>")})
    assert [e.object_id for e in grouped.context["cl"].result_list] == ["999"]


@pytest.mark.django_db
def test_replaying_a_large_group_is_one_background_task_with_progress(
    tenant, staff_client, django_capture_on_commit_callbacks
):
    """Today a group of ~22,000 is replayed inside the web request and cut off by the server's timeout."""
    bulk_failed(tenant, replay_limit() + 20)
    bulk_failed(tenant, 3, detail=GONE, reason="other")

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            URL + "?reason=" + ISSUE_TYPE,
            {"action": "replay_selected", "select_across": "1", "index": 0, "_selected_action": ["1"]},
            follow=True,
        )

    page = response.content.decode()
    assert f"Replaying {replay_limit() + 20} event(s) in the background" in page
    assert set(Event.objects.values_list("status", flat=True)) == {"failed"}  # nothing done in the request
    (batch,) = ReplayBatch.objects.all()
    assert queued() == [(REPLAY_BATCH, (batch.pk,))]
    assert "0 of 120 (0 %)" in staff_client.get(URL).content.decode()  # the list shows the batch

    assert run_queued(REPLAY_BATCH) == ["finished"]

    batch.refresh_from_db()
    assert (batch.state, batch.done, batch.queued, batch.refused) == ("finished", 120, 120, 0)
    # A bulk replay goes through the bulk lane (connector.bulk): one batch of 50 in the broker, the rest waits
    # its turn behind live deliveries.
    lane = Event.objects.filter(wait_reason="its turn (bulk work)")
    assert (lane.filter(status="queued").count(), lane.filter(status="waiting").count()) == (50, 70)
    assert Event.objects.filter(status="failed").count() == 3  # the other reason was not selected
    assert len(queued("connector.bulk.process_batch")) == 1
    assert batch.requested_by == "admin:operator"
    assert (
        "120 of 120 (100 %)"
        in staff_client.get(reverse("admin:audit_replaybatch_change", args=[batch.pk])).content.decode()
    )


def replay_limit():
    from audit.failed_admin import INLINE_LIMIT

    return INLINE_LIMIT


@pytest.mark.django_db
def test_a_batch_goes_on_in_slices_from_where_it_stopped(
    tenant, django_capture_on_commit_callbacks, monkeypatch
):
    bulk_failed(tenant, 5)
    with django_capture_on_commit_callbacks(execute=True):
        batch = replay.start_batch(Event.objects.all(), actor="admin:ann", description="five")
    monkeypatch.setattr(replay, "BATCH_SLICE_SECONDS", 0)
    assert run_queued(REPLAY_BATCH) == ["running"]  # one event, then it queues itself again
    batch.refresh_from_db()
    assert (batch.state, batch.done) == ("running", 1)
    assert queued(REPLAY_BATCH) == [(REPLAY_BATCH, (batch.pk,))]
    for _ in range(10):  # bounded
        if not queued(REPLAY_BATCH):
            break
        run_queued(REPLAY_BATCH)
    batch.refresh_from_db()
    assert (batch.state, batch.done, batch.queued) == ("finished", 5, 5)


@pytest.mark.django_db
def test_resolve_without_retry_needs_a_note_and_is_shown_on_the_event(tenant, staff_client):
    one, two = failed(tenant, 1), failed(tenant, 2)
    form = {"action": "resolve_selected", "index": 0, "_selected_action": [one.pk, two.pk]}

    asked = staff_client.post(URL, form).content.decode()
    assert "2 failed events selected." in asked and 'name="note"' in asked
    refused = staff_client.post(URL, {**form, "post": "yes", "note": "  "}).content.decode()
    assert "Say why these failures need no retry" in refused
    assert Event.objects.filter(status="failed").count() == 2

    done = staff_client.post(URL, {**form, "post": "yes", "note": "Issue type fixed by hand"}, follow=True)

    assert "Resolved 2 event(s) without retry." in done.content.decode()
    one.refresh_from_db()
    assert (one.status, one.resolved_by, one.resolution_note) == (
        "resolved",
        "admin:operator",
        "Issue type fixed by hand",
    )
    assert one.status_detail == ISSUE_TYPE  # the failure's detail stays
    assert not staff_client.get(URL).context["cl"].result_list
    page = staff_client.get(reverse("admin:audit_event_change", args=[one.pk])).content.decode()
    assert "Resolved without retry by operator" in page and "Issue type fixed by hand" in page
    events = staff_client.get(reverse("admin:audit_event_changelist")).content.decode()
    assert events.count("Resolved without retry by operator") == 2


@pytest.mark.django_db
def test_assign_to_a_staff_member_is_shown_in_the_lists(tenant, staff_client, django_user_model):
    ann = django_user_model.objects.create_user("ann", password="pw-ann-12345", is_staff=True)
    django_user_model.objects.create_user("customer", password="pw-cust-12345", is_staff=False)
    one = failed(tenant, 1)
    form = {"action": "assign_selected", "index": 0, "_selected_action": [one.pk]}

    asked = staff_client.post(URL, form).content.decode()
    assert ">ann<" in asked and "customer" not in asked  # staff only

    staff_client.post(URL, {**form, "post": "yes", "assignee": ann.pk})

    assert Event.objects.get(pk=one.pk).assigned_to == ann
    failed_list = staff_client.get(URL)
    assert "ann" in failed_list.content.decode().split(f">#{one.pk}<")[0].rsplit("<tr", 1)[1]
    assert staff_client.get(URL, {"assigned_to__id__exact": ann.pk}).context["cl"].result_count == 1
    events = staff_client.get(reverse("admin:audit_event_changelist")).content.decode()
    assert "Failed · assigned to ann" in events

    staff_client.post(URL, {**form, "post": "yes", "assignee": ""})
    assert Event.objects.get(pk=one.pk).assigned_to is None


@pytest.mark.django_db
def test_the_failed_events_admin_opens_failed_events_only(client, tenant, django_user_model):
    """Today a user with only the Failed events view permission opens any event through it."""
    user = django_user_model.objects.create_user("fay", password="pw-fay-12345", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_failedevent"))
    client.force_login(user)
    broken, fine = failed(tenant, 1), make_event(tenant, "invoice.create", 2, status="succeeded")

    assert client.get(f"{URL}{broken.pk}/change/").status_code == 200
    response = client.get(f"{URL}{fine.pk}/change/")

    assert response.status_code == 302 and response.url == reverse("admin:index")
    assert client.get(f"{URL}abc/change/").status_code == 302


@pytest.mark.django_db
def test_a_replayed_failure_opens_on_the_events_page_for_who_may_see_it(tenant, staff_client):
    event = failed(tenant, 1)
    replay.replay(Event.objects.filter(pk=event.pk), actor="admin:ann")
    response = staff_client.get(f"{URL}{event.pk}/change/")
    assert response.status_code == 302 and response.url == reverse(
        "admin:audit_event_change", args=[event.pk]
    )


@pytest.mark.django_db
def test_a_rolled_back_event_shows_a_word_and_offers_no_replay_or_rollback(tenant, staff_client):
    """Today its page is titled "… (rolled_back)" and still offers Replay and Roll back."""
    event = make_event(tenant, "invoice.create", 5, status="rolled_back")
    page = staff_client.get(reverse("admin:audit_event_change", args=[event.pk])).content.decode()
    assert "(rolled_back)" not in page and "(rolled back)" in page
    assert 'id="replay-event"' not in page and 'id="rollback-event"' not in page
    failed_event = failed(tenant, 6)
    page = staff_client.get(reverse("admin:audit_event_change", args=[failed_event.pk])).content.decode()
    assert 'id="replay-event"' in page and 'id="rollback-event"' in page


@pytest.mark.django_db
def test_replay_events_selects_a_reason_group(tenant):
    from io import StringIO

    from django.core.management import call_command

    bulk_failed(tenant, 3)
    other = failed(tenant, 99, GONE)
    out = StringIO()
    call_command("replay_events", "--reason", ISSUE_TYPE, stdout=out)
    assert "Queued 3 event(s), refused 0." in out.getvalue()
    assert Event.objects.get(pk=other.pk).status == "failed"
