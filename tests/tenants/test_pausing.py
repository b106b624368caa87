"""Pause and resume a tenant (issue 23, point 1): deliveries are still accepted, verified and stored, nothing is
sent to Jira, and on resume the held events are processed in the order they were received. From the admin
(with its permission), the pause_tenant command; shown on the tenant page and the health panel."""

import copy
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.urls import reverse

from audit.models import Event
from connector.replay import replay
from connector.sandbox.freshbooks import ACCOUNT_ID, BUSINESS_ID
from connector.sandbox.freshbooks_callbacks import signed_delivery
from connector.sandbox.freshbooks_records import put
from tenants import pausing
from tenants.models import FreshBooksWebhook
from tests.processing import created_issues, run_queued

PROCESS = "connector.tasks.process_event"
VERIFIER = "pause-test-verifier"
INVOICES = (7001, 7002, 7003)


@pytest.fixture
def hooked(connected, fb):
    """The connected tenant with a verified invoice callback, and three invoices in the fake FreshBooks."""
    FreshBooksWebhook.objects.create(
        account=connected.freshbooks_accounts.get(), callback_id=31, event="invoice", uri="https://x.test/",
        verifier=VERIFIER, verified=True,
    )  # fmt: skip
    for number in INVOICES:
        record = copy.deepcopy(fb.samples["invoice"])
        record["id"] = record["invoiceid"] = number
        record["invoice_number"] = f"INV-{number}"
        put(fb, "invoice", record)
    return connected


def deliver(client, capture, object_id):
    fields = {"name": "invoice.create", "object_id": str(object_id), "account_id": ACCOUNT_ID,
              "business_id": BUSINESS_ID}  # fmt: skip
    body, headers = signed_delivery(fields, VERIFIER)
    with capture(execute=True):
        return client.post(
            "/webhooks/freshbooks/",
            data=body,
            content_type="application/x-www-form-urlencoded",
            headers=headers,
        )


@pytest.mark.django_db
def test_paused_tenant_stores_deliveries_sends_nothing_and_resume_processes_them_in_order(
    client, hooked, fb, jira, django_capture_on_commit_callbacks
):
    assert pausing.pause(hooked, actor="command:ann", note="month-end close")

    answers = [deliver(client, django_capture_on_commit_callbacks, number) for number in INVOICES]

    assert [a.status_code for a in answers] == [200, 200, 200]  # accepted and verified, not 403
    assert run_queued(PROCESS) == ["waiting"] * 3
    events = list(Event.objects.filter(tenant=hooked).order_by("id"))
    assert [(e.object_id, e.status, e.wait_reason, e.wait_until) for e in events] == [
        (str(n), "waiting", "tenant paused", None) for n in INVOICES
    ]
    assert all(e.attempts == 0 for e in events)  # held, not a processing run
    assert not jira.requests and not fb.requests  # nothing fetched, nothing sent

    assert pausing.resume(hooked, actor="command:ann") == 3
    assert run_queued(PROCESS) == ["succeeded"] * 3

    summaries = [body["fields"]["summary"] for body in created_issues(jira)]
    assert [next(n for n in INVOICES if str(n) in s or f"INV-{n}" in s) for s in summaries] == list(INVOICES)
    assert not pausing.held(hooked).exists()
    hooked.refresh_from_db()
    assert not hooked.paused and hooked.paused_by == "" and hooked.pause_note == ""


@pytest.mark.django_db
def test_replays_while_paused_are_held_too(hooked, fb, jira):
    event = Event.objects.create(
        tenant=hooked, name="invoice.create", object_id=str(INVOICES[0]), account_id=ACCOUNT_ID,
        status=Event.Status.FAILED,
    )  # fmt: skip
    pausing.pause(hooked, actor="admin:ann")

    replay(Event.objects.filter(pk=event.pk), actor="admin:ann", sync=True)

    event.refresh_from_db()
    assert (event.status, event.wait_reason) == ("waiting", "tenant paused")
    assert not jira.requests


@pytest.mark.django_db
def test_pause_twice_keeps_the_first_and_resume_of_a_running_tenant_changes_nothing(tenant):
    assert pausing.pause(tenant, actor="admin:ann", note="first")
    assert not pausing.pause(tenant, actor="admin:bob", note="second")
    assert (tenant.paused_by, tenant.pause_note) == ("admin:ann", "first")
    shown = pausing.status(tenant)
    assert shown.startswith("paused since") and shown.endswith("admin:ann — first (0 event(s) held)")
    assert pausing.resume(tenant, actor="admin:ann") == 0
    assert pausing.resume(tenant, actor="admin:ann") is None
    assert pausing.status(tenant) == "running"


@pytest.mark.django_db
def test_a_resume_between_the_check_and_the_hold_releases_the_event(hooked, fb, jira, monkeypatch):
    """process_event saw the tenant paused; the operator resumed before the event was put into waiting: the
    event must not stay held on a running tenant."""
    from connector import tasks, waiting

    event = Event.objects.create(tenant=hooked, name="invoice.create", object_id=str(INVOICES[0]),
                                 account_id=ACCOUNT_ID, status=Event.Status.QUEUED)  # fmt: skip
    pausing.pause(hooked, actor="admin:ann")
    real_wait = waiting.wait

    def wait_after_a_resume(*args, **kwargs):
        pausing.resume(hooked, actor="admin:ann")  # the resume finds nothing held yet
        return real_wait(*args, **kwargs)

    monkeypatch.setattr(waiting, "wait", wait_after_a_resume)
    assert tasks.process_event(event.pk) == "waiting"
    monkeypatch.setattr(waiting, "wait", real_wait)

    event.refresh_from_db()
    assert event.status == "queued"
    assert run_queued(PROCESS) == ["succeeded"]


def command(*args):
    out = StringIO()
    call_command("pause_tenant", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_pause_tenant_command(tenant):
    assert "acme: paused." in command("acme", "--note", "migrating Jira")
    tenant.refresh_from_db()
    assert tenant.paused and tenant.paused_by.startswith("command") and tenant.pause_note == "migrating Jira"
    assert "already paused since" in command("acme")
    assert "acme: paused since" in command("acme", "--status")
    assert "resumed; 0 held event(s) queued" in command("acme", "--resume")
    assert "not paused" in command("acme", "--resume")
    assert command("acme", "--status") == "acme: running\n"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        (("nope",), "No tenant with slug 'nope'."),
        (("acme", "--resume", "--note", "x"), "--note goes with a pause only."),
        (("acme", "--note", "x" * 1001), "--note is at most 1000 characters."),
    ],
)
def test_pause_tenant_command_refuses_bad_arguments(tenant, args, message):
    with pytest.raises(CommandError, match=message):
        command(*args)


@pytest.fixture
def viewer(django_user_model, suggested_groups):
    user = django_user_model.objects.create_user("vera", password="pw-vera-123", is_staff=True)
    user.groups.add(Group.objects.get(name="viewer"))
    return user


@pytest.fixture
def operator(django_user_model, suggested_groups):
    user = django_user_model.objects.create_user("otto", password="pw-otto-123", is_staff=True)
    user.groups.add(Group.objects.get(name="operator"))
    return user


@pytest.mark.django_db
def test_admin_pause_and_resume_need_their_permission(client, tenant, viewer, operator):
    page = reverse("admin:tenants_tenant_change", args=[tenant.pk])
    pause_url = reverse("admin:tenants_tenant_pause", args=[tenant.pk])
    client.force_login(viewer)
    html = client.get(page).content.decode()
    assert "Running: deliveries are processed" in html and 'id="pause-sync"' not in html
    assert client.post(pause_url, {"note": "x"}).status_code == 403
    tenant.refresh_from_db()
    assert not tenant.paused

    client.force_login(operator)
    assert 'id="pause-sync"' in client.get(page).content.decode()
    response = client.post(pause_url, {"note": "supplier dispute"}, follow=True)
    html = response.content.decode()
    assert (
        "Acme Corp: paused." in html
        and "Paused: paused since" in html
        and "admin:otto — supplier dispute" in html
    )
    assert 'id="resume-sync"' in html
    index = client.get(reverse("admin:index")).content.decode()
    assert "<strong>paused</strong> since" in index.split('data-tenant="acme"')[1].split("</tr>")[0]

    response = client.post(reverse("admin:tenants_tenant_resume", args=[tenant.pk]), follow=True)
    assert "Acme Corp: resumed; 0 held event(s) queued" in response.content.decode()
    tenant.refresh_from_db()
    assert not tenant.paused


@pytest.mark.django_db
def test_admin_list_actions_pause_and_resume(client, tenant, operator):
    client.force_login(operator)
    url = reverse("admin:tenants_tenant_changelist")
    client.post(url, {"action": "pause_selected", "_selected_action": [tenant.pk]})
    tenant.refresh_from_db()
    assert tenant.paused and tenant.paused_by == "admin:otto"
    assert "paused since" in client.get(url).content.decode()
    client.post(url, {"action": "resume_selected", "_selected_action": [tenant.pk]})
    tenant.refresh_from_db()
    assert not tenant.paused
