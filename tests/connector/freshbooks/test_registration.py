"""register_webhooks and the admin actions against a fake FreshBooks on loopback."""

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from connector.defaults import create_default_mappings
from connector.freshbooks import registration
from connector.models import IssueMapping, WorklogRule
from connector.sandbox.freshbooks import make_fake_freshbooks
from connector.sandbox.freshbooks_callbacks import (
    add_callback,
    install_callback_routes,
    verification_delivery,
)
from connector.schedules import CONFIRM_VERIFICATION
from tenants.models import FreshBooksWebhook
from tests.processing import connected_account, run_queued

DEFAULT_EVENTS = {"invoice.create", "bill.create", "payment.create", "expense.create"}
TIME_EVENTS = {"time_entry.create", "time_entry.update", "time_entry.delete"}


@pytest.fixture
def fb_callbacks(settings):
    server = install_callback_routes(make_fake_freshbooks())
    settings.FRESHBOOKS_API_URL = server.url
    yield server
    server.close()


@pytest.fixture
def account(tenant):
    create_default_mappings(tenant, "ACME")
    WorklogRule.objects.create(tenant=tenant, match_kind=WorklogRule.MatchKind.NOTE_KEY)
    return connected_account(tenant)


def at_freshbooks(fb_callbacks, uri=None):
    """(event, uri) of every callback the fake holds, sorted."""
    return sorted(
        (c["event"], c["uri"]) for c in fb_callbacks.state["callbacks"].values() if uri in (None, c["uri"])
    )


def register(*args):
    from io import StringIO

    out = StringIO()
    call_command("register_webhooks", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_register_twice_leaves_exactly_one_callback_per_needed_event(fb_callbacks, account, settings):
    uri = registration.webhook_uri()
    assert uri == settings.PUBLIC_BASE_URL + "/webhooks/freshbooks/"
    first = register("--tenant", "acme")
    assert "created" in first
    second = register("--tenant", "acme")
    assert "created" not in second and "removed" not in second
    expected = sorted((event, uri) for event in DEFAULT_EVENTS | TIME_EVENTS)
    assert at_freshbooks(fb_callbacks) == expected
    rows = FreshBooksWebhook.objects.filter(account=account)
    assert sorted((r.event, r.uri) for r in rows) == expected
    assert {r.callback_id for r in rows} == set(fb_callbacks.state["callbacks"])
    assert not rows.filter(verified=True).exists()
    assert len(fb_callbacks.calls("POST", r"/events/callbacks$")) == len(
        expected
    )  # the second run created nothing


def test_handshake_after_registration_marks_rows_verified(
    client, fb_callbacks, account, django_capture_on_commit_callbacks
):
    register("--tenant", "acme")
    for callback_id in list(fb_callbacks.state["callbacks"]):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/webhooks/freshbooks/",
                data=verification_delivery(fb_callbacks, callback_id),
                content_type="application/x-www-form-urlencoded",
            )
        assert response.status_code == 200
    assert set(run_queued(CONFIRM_VERIFICATION)) == {"verified"}
    rows = FreshBooksWebhook.objects.filter(account=account)
    assert rows.count() == 7 and all(r.verified and r.verifier for r in rows)
    assert all(c["verified"] for c in fb_callbacks.state["callbacks"].values())
    # Registering again keeps the verified callbacks (and their verifiers) untouched.
    assert "awaiting verification" not in register("--tenant", "acme")
    assert all(r.verified and r.verifier for r in FreshBooksWebhook.objects.filter(account=account))


def test_unmapped_events_duplicates_and_foreign_callbacks(fb_callbacks, account):
    uri = registration.webhook_uri()
    stale = add_callback(fb_callbacks, "estimate.create", uri)  # an event no mapping needs any more
    twin_a = add_callback(fb_callbacks, "invoice.create", uri, verified=True)
    twin_b = add_callback(fb_callbacks, "invoice.create", uri)  # a duplicate at our URI
    foreign = add_callback(fb_callbacks, "invoice.create", "https://other-integration.example/hook")
    FreshBooksWebhook.objects.create(account=account, callback_id=stale, event="estimate.create", uri=uri)
    output = register("--tenant", "acme")
    assert f"estimate.create #{stale}" in output and f"invoice.create #{twin_b}" in output
    assert stale not in fb_callbacks.state["callbacks"] and twin_b not in fb_callbacks.state["callbacks"]
    assert twin_a in fb_callbacks.state["callbacks"] and foreign in fb_callbacks.state["callbacks"]
    assert not FreshBooksWebhook.objects.filter(callback_id__in=[stale, twin_b]).exists()
    # Disabling mappings and rules removes their callbacks on the next run.
    IssueMapping.objects.filter(tenant=account.tenant, event="bill.create").update(enabled=False)
    WorklogRule.objects.filter(tenant=account.tenant).update(enabled=False)
    output = register("--tenant", "acme")
    assert "bill.create" in output and "time_entry.create" in output
    events = [event for event, _ in at_freshbooks(fb_callbacks, uri)]
    assert sorted(events) == sorted(DEFAULT_EVENTS - {"bill.create"})
    assert sorted(FreshBooksWebhook.objects.values_list("event", flat=True)) == sorted(events)
    assert at_freshbooks(fb_callbacks, "https://other-integration.example/hook") == [
        ("invoice.create", "https://other-integration.example/hook")
    ]


def test_resend_verification_option(fb_callbacks, account):
    register("--tenant", "acme")
    some = FreshBooksWebhook.objects.get(event="invoice.create")
    some.verifier, some.verified = "known", True
    some.save()
    fb_callbacks.state["callbacks"][some.callback_id]["verified"] = True
    output = register("--tenant", "acme", "--resend-verification")
    assert len(fb_callbacks.state["resends"]) == 6 and some.callback_id not in fb_callbacks.state["resends"]
    assert "resend verification" in output


def test_rows_follow_freshbooks_verification_state(fb_callbacks, account):
    register("--tenant", "acme")
    hook = FreshBooksWebhook.objects.get(event="invoice.create")
    hook.verifier, hook.verified = "known", True
    hook.save()
    register("--tenant", "acme")  # FreshBooks says it is not verified: the row must not claim it is
    hook.refresh_from_db()
    assert not hook.verified and hook.verified_at is None


def test_all_tenants_and_command_errors(fb_callbacks, account):
    assert "created" in register("--all")
    with pytest.raises(CommandError, match="No tenant"):
        register("--tenant", "nobody")
    with pytest.raises(CommandError):
        register()
    fb_callbacks.state["access_tokens"].clear()  # FreshBooks refuses the token and the refresh fails too
    with pytest.raises(CommandError) as raised:
        register("--tenant", "acme")
    assert "\n" not in str(raised.value)


def test_inactive_tenant_is_refused(fb_callbacks, account):
    account.tenant.active = False
    account.tenant.save()
    with pytest.raises(CommandError, match="inactive"):
        register("--tenant", "acme")
    assert not fb_callbacks.state["callbacks"]


def test_admin_actions(staff_client, fb_callbacks, account):
    response = staff_client.post(
        reverse("admin:tenants_tenant_changelist"),
        {"action": "register_freshbooks_webhooks", "_selected_action": [account.tenant.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "created" in response.content.decode()
    assert FreshBooksWebhook.objects.filter(account=account).count() == 7
    hooks = list(FreshBooksWebhook.objects.values_list("pk", flat=True))
    response = staff_client.post(
        reverse("admin:tenants_freshbookswebhook_changelist"),
        {"action": "resend_verification", "_selected_action": hooks},
        follow=True,
    )
    assert response.status_code == 200
    assert sorted(fb_callbacks.state["resends"]) == sorted(fb_callbacks.state["callbacks"])
    page = staff_client.get(reverse("admin:tenants_freshbooksaccount_changelist")).content.decode()
    assert "Rejected deliveries" in page
