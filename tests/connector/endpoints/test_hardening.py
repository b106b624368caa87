# ruff: noqa: F811
"""Issue 14, findings 6-8: the FreshBooks handshake under forged posts, replayed deliveries (FreshBooks and
Jira, including dynamic deliveries whose JWT does not bind the body) and enumeration — each against the
loopback fakes, through the real endpoints."""

import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from audit.models import Event
from connector.freshbooks import registration
from connector.models import Link
from connector.sandbox.freshbooks_callbacks import delivery_fields, signed_delivery, verification_delivery
from connector.schedules import CONFIRM_VERIFICATION
from tenants.models import FreshBooksAccount, FreshBooksWebhook, JiraSite

# Fixtures shared with those modules (imported fixtures are used as test arguments: F811 by design).
from tests.connector.endpoints.test_freshbooks import fb_callbacks, pending  # noqa: F401
from tests.connector.endpoints.test_jira import (  # noqa: F401
    basic_site,
    client_secret,
    cloud_issue_deleted,
    gateway,
    link,
    oauth_site,
    post_admin,
    post_dynamic,
    sample,
)
from tests.processing import connected_account, queued, run_queued

pytestmark = pytest.mark.django_db

FB_URL = "/webhooks/freshbooks/"
FORM = "application/x-www-form-urlencoded"
PROCESS = "connector.tasks.process_event"


def fb_post(client, body, headers=None):
    return client.post(FB_URL, data=body, content_type=FORM, headers=headers or {})


# --- Finding 6: the handshake under forged posts -----------------------------------------------------------


def forged_handshake(fb_callbacks, callback_id, n):
    return verification_delivery(fb_callbacks, callback_id).replace(
        b"verifier=", f"verifier=forged{n}".encode()
    )


def test_forged_handshakes_never_replace_a_pending_verifier(
    client, fb_callbacks, pending, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            fb_post(client, verification_delivery(fb_callbacks, pending.callback_id)).json()["status"]
            == "verifying"
        )
        for n in range(20):
            response = fb_post(client, forged_handshake(fb_callbacks, pending.callback_id, n))
            assert response.status_code == 200 and response.json()["status"] == "verification pending"
    assert queued(CONFIRM_VERIFICATION) == [(CONFIRM_VERIFICATION, (pending.pk,))], "one confirmation"
    assert run_queued(CONFIRM_VERIFICATION) == ["verified"]
    pending.refresh_from_db()
    real = fb_callbacks.state["callbacks"][pending.callback_id]["verifier"]
    assert pending.verified and pending.verifier == real
    sent = [
        put.json()["callback"]["verifier"]
        for put in fb_callbacks.calls("PUT")
        if "verifier" in put.json()["callback"]
    ]
    assert sent == [real], "no forged verifier was sent to FreshBooks"


def test_a_forged_first_handshake_is_dropped_and_resend_recovers(
    client, fb_callbacks, pending, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        fb_post(client, forged_handshake(fb_callbacks, pending.callback_id, 0))
        assert fb_post(client, verification_delivery(fb_callbacks, pending.callback_id)).json()["status"] == (
            "verification pending"
        )
    assert run_queued(CONFIRM_VERIFICATION)[0].startswith("refused")  # FreshBooks refuses the forgery
    registration.resend_verification(FreshBooksWebhook.objects.get(pk=pending.pk), actor="test")
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            fb_post(client, verification_delivery(fb_callbacks, pending.callback_id)).json()["status"]
            == "verifying"
        )
    assert run_queued(CONFIRM_VERIFICATION) == ["verified"]


def test_resend_drops_a_pending_verifier_so_the_next_one_is_kept(
    client, fb_callbacks, pending, django_capture_on_commit_callbacks
):
    FreshBooksWebhook.objects.filter(pk=pending.pk).update(
        verifier="stuck-forged"
    )  # its confirm task was lost
    registration.resend_verification(FreshBooksWebhook.objects.get(pk=pending.pk), actor="test")
    assert fb_callbacks.state["resends"] == [pending.callback_id]
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            fb_post(client, verification_delivery(fb_callbacks, pending.callback_id)).json()["status"]
            == "verifying"
        )


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
def test_odd_handshake_fields_are_a_clear_400(client, fb_callbacks, pending, field, value):
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


def test_a_processed_freshbooks_delivery_posted_again_is_one_repeat_then_replays(
    client, verified, settings, django_capture_on_commit_callbacks
):
    body, headers = signed_delivery(delivery_fields(), VERIFIER)
    with django_capture_on_commit_callbacks(execute=True):
        first = fb_post(client, body, headers)
    event = Event.objects.get()
    Event.objects.filter(pk=event.pk).update(status=Event.Status.SUCCEEDED)  # processed by a worker
    with django_capture_on_commit_callbacks(execute=True):
        answers = [fb_post(client, body, headers) for _ in range(5)]
    assert first.json()["status"] == "queued"
    # The first copy may be a genuine second edit: stored and processed (it re-reads the record). While it is
    # queued, the copies are replays of it: no new event, no new work (connector.repeats).
    repeat = Event.objects.latest("id")
    assert answers[0].json() == {"status": "queued", "event": repeat.pk} and repeat.pk != event.pk
    assert all(
        r.status_code == 200 and r.json() == {"status": "replay", "event": repeat.pk} for r in answers[1:]
    )
    assert Event.objects.count() == 2 and len(queued(PROCESS)) == 2
    # Outside the window the same body is a new delivery again (FreshBooks sends no delivery id).
    Event.objects.update(
        status=Event.Status.SUCCEEDED,
        received_at=timezone.now() - timedelta(seconds=settings.WEBHOOK_REPLAY_WINDOW + 1),
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert fb_post(client, body, headers).json()["status"] == "queued"
    assert len(queued(PROCESS)) == 3


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
    forged = cloud_issue_deleted() | {"matchedWebhookIds": [1001]}
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
    gateway.state["fail_next"] = [("GET", r"issue/10000", 500)]
    response = post_dynamic(client, cloud_issue_deleted() | {"matchedWebhookIds": [1001]})
    assert response.status_code == 503 and int(response["Retry-After"]) >= 1
    assert len(gateway.calls("GET")) == 1, "one try: the sender waits, and sends it again"
    assert Link.objects.get(pk=row.pk).state == "created" and not Event.objects.exists(), "stored nothing"
    assert post_dynamic(client, cloud_issue_deleted() | {"matchedWebhookIds": [1001]}).status_code == 200
    assert Link.objects.get(pk=row.pk).state == "deleted", "Jira confirms on the retry: gone"


# --- Finding 8: enumeration and the rejected counter -------------------------------------------------------


def test_unknown_jira_site_answers_like_a_bad_signature(client, basic_site):
    import uuid

    body = sample("worklog_deleted.json")
    unknown = post_admin(client, JiraSite(uuid=uuid.uuid4()), body)
    forged = post_admin(client, basic_site, body, secret="guessed")
    assert unknown.status_code == forged.status_code == 401 and unknown.json() == forged.json()


def test_unknown_callback_account_and_inactive_tenant_answer_alike_to_the_handshake(
    client, fb_callbacks, pending
):
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


@pytest.mark.parametrize("ids", [["１００１"], ["١٠٠١"], [" 1001 "], [True]])
def test_webhook_ids_are_ascii_digits_only(client, tenant, oauth_site, ids):
    row = link(tenant, 1, jira_issue_id="10000", jira_issue_key="TEST-1")
    response = post_dynamic(client, cloud_issue_deleted() | {"matchedWebhookIds": ids})
    assert response.status_code == 404 and Link.objects.get(pk=row.pk).state == "created"
