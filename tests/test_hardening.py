# ruff: noqa: F811
"""Issue 14, findings 4-8: vendor URLs, connection errors, the FreshBooks handshake, replayed deliveries
(FreshBooks and Jira) and enumeration — each against the loopback fakes, through the real endpoints."""

import base64
import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from audit.models import Event
from connector.freshbooks import callbacks
from connector.models import Link
from tenants.models import ConnectionStatus, FreshBooksAccount, FreshBooksWebhook, JiraSite
from tenants.vendor_urls import check_vendor_url
from tests.fakes.freshbooks_callbacks import (
    connected_account,
    delivery_fields,
    queued,
    run_queued,
    signed_delivery,
    verification_delivery,
)
from tests.fakes.jira import API_TOKEN, EMAIL
from tests.test_connections import jira_site_form

# Fixtures shared with those modules (imported fixtures are used as test arguments: F811 by design).
from tests.test_freshbooks_webhooks import fb, pending  # noqa: F401
from tests.test_jira_webhooks_receive import (  # noqa: F401
    basic_site,
    client_secret,
    gateway,
    issue_deleted_sample,
    link,
    oauth_site,
    post_admin,
    post_dynamic,
    sample,
)

pytestmark = pytest.mark.django_db

FB_URL = "/webhooks/freshbooks/"
FORM = "application/x-www-form-urlencoded"
PROCESS = "connector.tasks.process_event"


def fb_post(client, body, headers=None):
    return client.post(FB_URL, data=body, content_type=FORM, headers=headers or {})


# --- Finding 4: the stored token only goes where it was checked -------------------------------------------


@pytest.fixture
def api_token_site(tenant, fake_jira):
    return JiraSite.objects.create(
        tenant=tenant, base_url=fake_jira.url, email=EMAIL, api_token=API_TOKEN, deployment="cloud",
        status=ConnectionStatus.CONNECTED,
    )  # fmt: skip


def basic_tokens(server):
    """The API tokens that reached `server` in Basic auth headers."""
    found = []
    for request in server.calls():
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            found.append(base64.b64decode(header[6:]).decode().partition(":")[2])
    return found


def test_changing_url_or_email_needs_the_token_again(
    staff_client, tenant, fake_jira, api_token_site, fake_server
):
    attacker = fake_server("attacker")
    url = reverse("admin:tenants_jirasite_change", args=[api_token_site.pk])
    for change in ({"base_url": attacker.url}, {"email": "me@attacker.test"}):
        response = staff_client.post(url, jira_site_form(tenant, fake_jira, api_token="", **change))
        assert response.status_code == 200 and "type it again" in response.content.decode(), change
    assert not attacker.calls(), "the stored token was sent nowhere"
    api_token_site.refresh_from_db()
    assert (api_token_site.base_url, api_token_site.email) == (fake_jira.url, EMAIL)
    # With the token typed, the new URL is checked with that token — never with the stored one.
    staff_client.post(url, jira_site_form(tenant, fake_jira, base_url=attacker.url, api_token="typed-token"))
    assert basic_tokens(attacker) and set(basic_tokens(attacker)) == {"typed-token"}


# --- Finding 5: https on a public address, and no remote body in errors ------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://acme.atlassian.net",  # not https
        "https://127.0.0.1",
        "https://localhost:8443",
        "https://10.1.2.3",
        "https://192.168.0.10",
        "https://169.254.169.254",  # cloud metadata
        "https://[::1]",
        "https://[::ffff:127.0.0.1]",
        "https://0.0.0.0",
        "ftp://acme.atlassian.net",
    ],
)
def test_vendor_urls_must_be_https_on_a_public_address(settings, url):
    settings.ALLOW_LOCAL_VENDOR_URLS = False
    with pytest.raises(ValidationError):
        check_vendor_url(url)


def test_public_https_url_passes_and_the_switch_allows_local_ones(settings):
    settings.ALLOW_LOCAL_VENDOR_URLS = False
    check_vendor_url("https://93.184.215.14")  # a public literal: no DNS needed
    settings.ALLOW_LOCAL_VENDOR_URLS = True
    check_vendor_url("http://127.0.0.1:8080")
    with pytest.raises(ValidationError):
        check_vendor_url("file:///etc/passwd")


def test_form_and_command_refuse_a_local_url_without_the_switch(staff_client, tenant, fake_jira, settings):
    settings.ALLOW_LOCAL_VENDOR_URLS = False
    response = staff_client.post(reverse("admin:tenants_jirasite_add"), jira_site_form(tenant, fake_jira))
    assert response.status_code == 200 and "must use https" in response.content.decode()
    assert not fake_jira.calls() and not JiraSite.objects.exists()
    with pytest.raises(CommandError, match="not on a public address"):
        call_command(
            "create_tenant", "--name", "Globex", "--slug", "globex", "--jira-url", "https://127.0.0.1:9",
            "--jira-email", "ops@globex.test", "--jira-project", "FIN", "--skip-check",
        )  # fmt: skip


def test_connection_errors_never_echo_the_remote_body(staff_client, tenant, fake_jira, api_token_site):
    internal = "INTERNAL-ADMIN-PAGE: db password hunter2"
    # A 500 on every try (idempotent GETs are retried).
    fake_jira.state["fail_next"] = [
        {"method": "GET", "path": "serverInfo", "status": 500, "body": internal}
    ] * 3
    site_form = staff_client.post(
        reverse("admin:tenants_jirasite_change", args=[api_token_site.pk]),
        # The same fake under another name: a changed URL, so it is checked again.
        jira_site_form(
            tenant, fake_jira, base_url=fake_jira.url.replace("127.0.0.1", "localhost"), api_token=API_TOKEN
        ),
    )
    assert "HTTP 500" in site_form.content.decode() and internal not in site_form.content.decode()
    fake_jira.state["fail_next"] = [{"method": "GET", "path": "myself", "status": 403, "body": internal}]
    action = staff_client.post(
        reverse("admin:tenants_tenant_changelist"),
        {"action": "test_connection", "_selected_action": [tenant.pk], "index": 0},
        follow=True,
    )
    text = action.content.decode()
    assert "HTTP 403" in text and internal not in text


# --- Finding 6: the handshake under forged posts -----------------------------------------------------------


def forged_handshake(fb, callback_id, n):
    return verification_delivery(fb, callback_id).replace(b"verifier=", f"verifier=forged{n}".encode())


def test_forged_handshakes_never_replace_a_pending_verifier(
    client, fb, pending, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert fb_post(client, verification_delivery(fb, pending.callback_id)).json()["status"] == "verifying"
        for n in range(20):
            response = fb_post(client, forged_handshake(fb, pending.callback_id, n))
            assert response.status_code == 200 and response.json()["status"] == "verification pending"
    assert queued(callbacks.CONFIRM_TASK) == [(callbacks.CONFIRM_TASK, (pending.pk,))], "one confirmation"
    assert run_queued(callbacks.CONFIRM_TASK) == ["verified"]
    pending.refresh_from_db()
    real = fb.state["callbacks"][pending.callback_id]["verifier"]
    assert pending.verified and pending.verifier == real
    sent = [
        put.json()["callback"]["verifier"] for put in fb.calls("PUT") if "verifier" in put.json()["callback"]
    ]
    assert sent == [real], "no forged verifier was sent to FreshBooks"


def test_a_forged_first_handshake_is_dropped_and_resend_recovers(
    client, fb, pending, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        fb_post(client, forged_handshake(fb, pending.callback_id, 0))
        assert fb_post(client, verification_delivery(fb, pending.callback_id)).json()["status"] == (
            "verification pending"
        )
    assert run_queued(callbacks.CONFIRM_TASK)[0].startswith("refused")  # FreshBooks refuses the forgery
    callbacks.resend_verification(FreshBooksWebhook.objects.get(pk=pending.pk), actor="test")
    with django_capture_on_commit_callbacks(execute=True):
        assert fb_post(client, verification_delivery(fb, pending.callback_id)).json()["status"] == "verifying"
    assert run_queued(callbacks.CONFIRM_TASK) == ["verified"]


def test_resend_drops_a_pending_verifier_so_the_next_one_is_kept(
    client, fb, pending, django_capture_on_commit_callbacks
):
    FreshBooksWebhook.objects.filter(pk=pending.pk).update(
        verifier="stuck-forged"
    )  # its confirm task was lost
    callbacks.resend_verification(FreshBooksWebhook.objects.get(pk=pending.pk), actor="test")
    assert fb.state["resends"] == [pending.callback_id]
    with django_capture_on_commit_callbacks(execute=True):
        assert fb_post(client, verification_delivery(fb, pending.callback_id)).json()["status"] == "verifying"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("object_id", "²"),  # a Unicode digit: str.isdigit() says yes, int() says no
        ("object_id", "١٢٣"),  # Arabic-Indic digits: int() would take them
        ("object_id", "1" * 19),
        ("verifier", "v" * 257),
        ("system", "x" * 1025),
    ],
)
def test_odd_handshake_fields_are_a_clear_400(client, fb, pending, field, value):
    fields = {"name": "callback.verify", "object_id": str(pending.callback_id), "account_id": "6BApk",
              "verifier": "v", field: value}  # fmt: skip
    response = fb_post(client, urlencode(fields).encode())
    assert response.status_code == 400
    assert not queued() and not FreshBooksWebhook.objects.get(pk=pending.pk).verifier


def test_unicode_digits_in_a_delivery_object_id_are_a_clear_400(client, pending):
    body = urlencode({**delivery_fields(), "object_id": "²"}).encode()
    assert fb_post(client, body).status_code == 400


# --- Finding 7: replayed deliveries ------------------------------------------------------------------------


VERIFIER = "verifier-for-replay-tests"


@pytest.fixture
def verified(tenant):
    account = connected_account(tenant)
    FreshBooksWebhook.objects.create(
        account=account, callback_id=11, event="invoice.create", uri="https://x.test/", verifier=VERIFIER,
        verified=True,
    )  # fmt: skip
    return account


def test_a_processed_freshbooks_delivery_posted_again_is_acknowledged_without_work(
    client, verified, settings, django_capture_on_commit_callbacks
):
    body, headers = signed_delivery(delivery_fields(), VERIFIER)
    with django_capture_on_commit_callbacks(execute=True):
        first = fb_post(client, body, headers)
    event = Event.objects.get()
    Event.objects.filter(pk=event.pk).update(status=Event.Status.SUCCEEDED)  # processed by a worker
    with django_capture_on_commit_callbacks(execute=True):
        replays = [fb_post(client, body, headers) for _ in range(5)]
    assert first.json()["status"] == "queued"
    assert all(r.status_code == 200 and r.json() == {"status": "replay", "event": event.pk} for r in replays)
    assert Event.objects.count() == 1 and len(queued(PROCESS)) == 1, "no new event, no new work"
    # Outside the window the same body is a new delivery again (FreshBooks sends no delivery id).
    Event.objects.filter(pk=event.pk).update(
        received_at=timezone.now() - timedelta(seconds=settings.WEBHOOK_REPLAY_WINDOW + 1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert fb_post(client, body, headers).json()["status"] == "queued"
    assert len(queued(PROCESS)) == 2


def key_change(old, new, timestamp):
    body = sample("issue_updated__status.json")
    body["timestamp"] = timestamp
    body["issue"]["key"] = new
    body["changelog"]["items"] = [{"field": "Key", "fromString": old, "toString": new}]
    return body


def test_an_old_signed_jira_delivery_resent_does_not_undo_a_newer_change(client, tenant, basic_site):
    row = link(tenant, 1, jira_issue_id="10000", jira_issue_key="FIN-1")
    older, newer = (
        key_change("FIN-1", "OPS-1", 1_700_000_000_000),
        key_change("OPS-1", "FIN-9", 1_700_000_100_000),
    )
    assert post_admin(client, basic_site, older).status_code == 200
    assert post_admin(client, basic_site, newer).status_code == 200
    assert Link.objects.get(pk=row.pk).jira_issue_key == "FIN-9"
    # The captured older delivery, re-sent with a fresh (unsigned) identifier header.
    replay = post_admin(client, basic_site, older, identifier="a-brand-new-identifier")
    assert replay.status_code == 200 and replay.json()["status"] == "skipped"
    assert Link.objects.get(pk=row.pk).jira_issue_key == "FIN-9"


def test_late_older_delivery_after_a_deletion_changes_nothing(client, tenant, basic_site):
    row = link(tenant, 1, jira_issue_id="10000", jira_issue_key="FIN-1")
    deleted = sample("issue_updated__status.json")
    deleted.update(webhookEvent="jira:issue_deleted", timestamp=1_700_000_200_000)
    assert post_admin(client, basic_site, deleted).status_code == 200
    assert post_admin(client, basic_site, key_change("FIN-1", "OPS-1", 1_700_000_000_000)).status_code == 200
    row.refresh_from_db()
    assert (row.state, row.jira_issue_key) == ("deleted", "FIN-1")


def test_a_future_timestamp_cannot_freeze_a_link(client, tenant, basic_site):
    row = link(tenant, 1, jira_issue_id="10000", jira_issue_key="FIN-1")
    far = int(timezone.now().timestamp() * 1000) + 10 * 365 * 24 * 3600 * 1000
    post_admin(client, basic_site, key_change("FIN-1", "OPS-1", far))
    row.refresh_from_db()
    assert row.jira_changed_at < far
    later = int(timezone.now().timestamp() * 1000) + 3_600_000
    post_admin(client, basic_site, key_change("OPS-1", "FIN-2", later))
    assert Link.objects.get(pk=row.pk).jira_issue_key == "FIN-2"


def add_gateway_issue(gateway, issue_id, key):
    gateway.state["issues"][key] = {"id": issue_id, "key": key, "fields": {"summary": key}, "properties": {},
                                    "hidden_searches": 0, "created": 0}  # fmt: skip


def test_a_dynamic_delivery_is_checked_with_jira_before_it_changes_a_link(
    client, tenant, oauth_site, gateway
):
    """A captured JWT paired with a forged body (the token does not bind the body): Jira's answer counts."""
    row = link(tenant, 1, jira_issue_id="10000", jira_issue_key="TEST-1")
    add_gateway_issue(gateway, "10000", "TEST-1")  # the issue still exists in Jira
    forged = issue_deleted_sample() | {"matchedWebhookIds": [1001]}
    assert post_dynamic(client, forged).json()["status"] == "skipped"
    assert Link.objects.get(pk=row.pk).state == "created"

    renamed = sample("issue_updated__status.json") | {"matchedWebhookIds": [1001]}
    renamed["issue"]["key"] = "EVIL-1"
    assert post_dynamic(client, renamed).status_code == 200
    assert Link.objects.get(pk=row.pk).jira_issue_key == "TEST-1", "Jira still calls it TEST-1"
    gateway.state["issues"]["FIN-5"] = gateway.state["issues"].pop("TEST-1") | {
        "key": "FIN-5"
    }  # really moved
    assert post_dynamic(client, renamed).status_code == 200
    assert Link.objects.get(pk=row.pk).jira_issue_key == "FIN-5", "the key Jira shows, not the body's"
    assert all(call.headers["authorization"] == "Bearer gateway-access-token" for call in gateway.calls())


def test_a_dynamic_delivery_jira_cannot_confirm_is_refused_for_a_retry(client, tenant, oauth_site, gateway):
    row = link(tenant, 1, jira_issue_id="10000", jira_issue_key="TEST-1")
    gateway.state["fail_next"] = [("GET", r"issue/10000", 500)] * 3
    response = post_dynamic(client, issue_deleted_sample() | {"matchedWebhookIds": [1001]})
    assert response.status_code == 503
    assert Link.objects.get(pk=row.pk).state == "created" and not Event.objects.exists(), "stored nothing"
    assert post_dynamic(client, issue_deleted_sample() | {"matchedWebhookIds": [1001]}).status_code == 200
    assert Link.objects.get(pk=row.pk).state == "deleted", "Jira confirms on the retry: gone"


# --- Finding 8: enumeration and the rejected counter -------------------------------------------------------


def test_unknown_jira_site_answers_like_a_bad_signature(client, basic_site):
    import uuid

    body = sample("worklog_deleted.json")
    unknown = post_admin(client, JiraSite(uuid=uuid.uuid4()), body)
    forged = post_admin(client, basic_site, body, secret="guessed")
    assert unknown.status_code == forged.status_code == 401 and unknown.json() == forged.json()


def test_unknown_callback_account_and_inactive_tenant_answer_alike_to_the_handshake(client, fb, pending):
    fields = {"name": "callback.verify", "object_id": str(pending.callback_id), "account_id": "6BApk",
              "verifier": "v"}  # fmt: skip
    answers = [
        fb_post(client, urlencode({**fields, "account_id": "nobody"}).encode()),
        fb_post(client, urlencode({**fields, "object_id": "424242"}).encode()),
    ]
    pending.account.tenant.__class__.objects.filter(pk=pending.account.tenant_id).update(active=False)
    answers.append(fb_post(client, urlencode(fields).encode()))
    assert {a.status_code for a in answers} == {404} and len({json.dumps(a.json()) for a in answers}) == 1


def test_a_flood_of_unsigned_posts_moves_the_counter_once_a_second(client, verified):
    body, _ = signed_delivery(delivery_fields(), VERIFIER)
    for _ in range(50):
        assert fb_post(client, body, {"X-FreshBooks-Hmac-SHA256": "forged"}).status_code == 401
    assert FreshBooksAccount.objects.get(pk=verified.pk).rejected_deliveries == 1
    FreshBooksAccount.objects.filter(pk=verified.pk).update(
        rejected_deliveries=2**31 - 1, last_rejected_at=None
    )
    assert fb_post(client, body, {"X-FreshBooks-Hmac-SHA256": "forged"}).status_code == 401
    assert FreshBooksAccount.objects.get(pk=verified.pk).rejected_deliveries == 2**31 - 1, "saturates"


def test_a_refused_token_refresh_shows_the_error_code_not_the_vendor_text(tenant, fb_auth):
    from tenants import tokens
    from tests.test_token_refresh import make_account

    remote = "INTERNAL: refresh store at 10.0.0.7 unavailable"
    fb_auth.state["token_error"] = (400, {"error": "invalid_grant", "error_description": remote})
    account = make_account(tenant, expires_in=-timedelta(minutes=1))
    with pytest.raises(tokens.ReconnectRequired):
        tokens.access_token(account)
    account.refresh_from_db()
    assert "invalid_grant" in account.last_error and remote not in account.last_error


@pytest.mark.parametrize("ids", [["１００１"], ["١٠٠١"], [" 1001 "], [True]])
def test_webhook_ids_are_ascii_digits_only(client, tenant, oauth_site, ids):
    row = link(tenant, 1, jira_issue_id="10000", jira_issue_key="TEST-1")
    response = post_dynamic(client, issue_deleted_sample() | {"matchedWebhookIds": ids})
    assert response.status_code == 404 and Link.objects.get(pk=row.pk).state == "created"
