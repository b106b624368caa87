"""POST /webhooks/freshbooks/: routing, signatures, bad input, duplicates, the callback handshake."""

from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import Event
from connector.freshbooks import registration
from connector.sandbox.freshbooks import make_fake_freshbooks
from connector.sandbox.freshbooks_callbacks import (
    add_callback,
    delivery_fields,
    install_callback_routes,
    signed_delivery,
    verification_delivery,
)
from connector.schedules import CONFIRM_VERIFICATION
from tenants.models import FreshBooksAccount, FreshBooksWebhook, Tenant
from tests.processing import connected_account, queued, run_queued

URL = "/webhooks/freshbooks/"
FORM = "application/x-www-form-urlencoded"
VERIFIER_A = "test_verifier_abc123"
VERIFIER_B = "tenant-b-verifier-xyz"
PROCESS = "connector.tasks.process_event"


@pytest.fixture
def account(tenant):
    account = connected_account(tenant, "6BApk", "6543")
    FreshBooksWebhook.objects.create(
        account=account, callback_id=11, event="invoice.create", uri="https://x.test/", verifier=VERIFIER_A,
        verified=True,
    )  # fmt: skip
    return account


@pytest.fixture
def account_b(db):
    other = Tenant.objects.create(name="Beta Ltd", slug="beta")
    account = connected_account(other, "Zq9Xk", "7777")
    FreshBooksWebhook.objects.create(
        account=account, callback_id=21, event="invoice.create", uri="https://x.test/", verifier=VERIFIER_B,
        verified=True,
    )  # fmt: skip
    return account


def post(client, body, headers=None, content_type=FORM):
    return client.post(URL, data=body, content_type=content_type, headers=headers or {})


def deliver(client, django_capture_on_commit_callbacks, fields, verifier=VERIFIER_A):
    body, headers = signed_delivery(fields, verifier)
    with django_capture_on_commit_callbacks(execute=True):
        return post(client, body, headers)


def test_known_vector_delivery_is_stored_encrypted_and_enqueued(
    client, account, django_capture_on_commit_callbacks
):
    body = (
        b"name=invoice.create&object_id=1234567&account_id=6BApk&business_id=6543&identity_id=1234&user_id=1"
    )
    headers = {"X-FreshBooks-Hmac-SHA256": "66m3NCYE4s7FV/3rFs/xCnKvkHg5nuqiBe9IWfSz4MM="}
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, body, headers)
    assert response.status_code == 200, response.content
    event = Event.objects.get()
    assert (event.tenant, event.source, event.name, event.object_id) == (
        account.tenant,
        "freshbooks",
        "invoice.create",
        "1234567",
    )
    assert (event.account_id, event.business_id, event.status) == ("6BApk", "6543", Event.Status.QUEUED)
    assert list(event.payload.items()) == [
        ("name", "invoice.create"), ("object_id", "1234567"), ("account_id", "6BApk"),
        ("business_id", "6543"), ("identity_id", "1234"), ("user_id", "1"),
    ]  # fmt: skip
    assert response.json() == {"status": "queued", "event": event.pk}
    assert queued() == [(PROCESS, (event.pk,))]
    with connection.cursor() as cursor:
        cursor.execute("SELECT payload FROM audit_event WHERE id = %s", [event.pk])
        stored = bytes(cursor.fetchone()[0])
    assert b"1234567" not in stored and b"invoice.create" not in stored


def test_non_ascii_values(client, account, django_capture_on_commit_callbacks):
    fields = {**delivery_fields(), "note": "Réunion — 東京 ✓"}
    response = deliver(client, django_capture_on_commit_callbacks, fields)
    assert response.status_code == 200, response.content
    assert Event.objects.get().payload["note"] == "Réunion — 東京 ✓"


def test_delivery_for_tenant_a_signed_with_tenant_b_verifier_is_rejected(
    client, account, account_b, django_capture_on_commit_callbacks
):
    response = deliver(client, django_capture_on_commit_callbacks, delivery_fields(), verifier=VERIFIER_B)
    assert response.status_code == 401
    assert not Event.objects.exists() and not queued()
    account.refresh_from_db(), account_b.refresh_from_db()
    assert account.rejected_deliveries == 1 and account.last_rejected_at is not None
    assert account_b.rejected_deliveries == 0
    # B's own delivery with B's verifier goes to B.
    fields = delivery_fields(account_id="Zq9Xk", business_id="7777")
    assert deliver(client, django_capture_on_commit_callbacks, fields, verifier=VERIFIER_B).status_code == 200
    assert Event.objects.get().tenant == account_b.tenant


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-FreshBooks-Hmac-SHA256": ""}, {"X-FreshBooks-Hmac-SHA256": "not-a-signature"}],
    ids=["missing", "empty", "wrong"],
)
def test_missing_or_wrong_signature_is_401_and_counted(client, account, headers):
    body, _ = signed_delivery(delivery_fields(), VERIFIER_A)
    assert post(client, body, headers).status_code == 401
    assert post(client, body, headers).status_code == 401
    assert not Event.objects.exists()
    # Counted at most once a second: a flood of unsigned posts cannot inflate the counter without limit.
    assert FreshBooksAccount.objects.get(pk=account.pk).rejected_deliveries == 1
    FreshBooksAccount.objects.filter(pk=account.pk).update(
        last_rejected_at=timezone.now() - timedelta(seconds=2)
    )
    assert post(client, body, headers).status_code == 401
    assert FreshBooksAccount.objects.get(pk=account.pk).rejected_deliveries == 2


def test_tampered_body_is_rejected(client, account):
    body, headers = signed_delivery(delivery_fields(object_id="1"), VERIFIER_A)
    assert post(client, body.replace(b"object_id=1", b"object_id=2"), headers).status_code == 401
    assert not Event.objects.exists()


def test_each_callback_has_its_own_verifier(client, account, django_capture_on_commit_callbacks):
    FreshBooksWebhook.objects.create(
        account=account, callback_id=12, event="bill.create", uri="https://x.test/", verifier="bill-verifier",
        verified=True,
    )  # fmt: skip
    bill = delivery_fields(name="bill.create")
    assert deliver(client, django_capture_on_commit_callbacks, bill, verifier=VERIFIER_A).status_code == 401
    assert (
        deliver(client, django_capture_on_commit_callbacks, bill, verifier="bill-verifier").status_code == 200
    )
    # A callback that is not verified yet does not authenticate anything, but a delivery it signs is told why.
    FreshBooksWebhook.objects.create(
        account=account, callback_id=13, event="expense.create", uri="https://x.test/", verifier="pending",
    )  # fmt: skip
    expense = delivery_fields(name="expense.create")
    stored = Event.objects.count()
    response = deliver(client, django_capture_on_commit_callbacks, expense, verifier="pending")
    assert response.status_code == 409
    assert (
        "Correctly signed, but callback #13 (expense.create) is not verified yet" in response.json()["error"]
    )
    assert Event.objects.count() == stored
    assert deliver(client, django_capture_on_commit_callbacks, expense, verifier="forged").status_code == 401


def test_signed_delivery_before_any_verification_is_told_so(
    client, tenant, django_capture_on_commit_callbacks
):
    account = connected_account(tenant, "6BApk", "6543")
    FreshBooksWebhook.objects.create(account=account, callback_id=21, event="invoice.create", uri="https://x.test/",
                                     verifier="not-yet-confirmed")  # fmt: skip
    fields = delivery_fields(name="invoice.create")
    response = deliver(client, django_capture_on_commit_callbacks, fields, verifier="not-yet-confirmed")
    assert (
        response.status_code == 409
        and "callback #21 (invoice.create) is not verified yet" in response.json()["error"]
    )
    assert deliver(client, django_capture_on_commit_callbacks, fields, verifier="guess").status_code == 401
    assert not Event.objects.exists()


def test_parent_event_callback_verifies_child_events(client, account, django_capture_on_commit_callbacks):
    FreshBooksWebhook.objects.create(
        account=account, callback_id=14, event="payment", uri="https://x.test/", verifier="all-payments",
        verified=True,
    )  # fmt: skip
    fields = delivery_fields(name="payment.update")
    response = deliver(client, django_capture_on_commit_callbacks, fields, verifier="all-payments")
    assert response.status_code == 200, response.content
    event = Event.objects.get()
    assert (event.name, event.tenant, event.status) == ("payment.update", account.tenant, Event.Status.QUEUED)
    assert response.json() == {"status": "queued", "event": event.pk}
    assert queued() == [(PROCESS, (event.pk,))]
    # Signed with another verifier, the same child event is refused: the parent's verifier is what counts.
    Event.objects.all().delete()
    refused = deliver(client, django_capture_on_commit_callbacks, fields, verifier="not-the-parent's")
    assert refused.status_code == 401 and not Event.objects.exists()


def test_business_id_is_optional_when_the_account_is_unique(
    client, account, django_capture_on_commit_callbacks
):
    response = deliver(client, django_capture_on_commit_callbacks, delivery_fields(business_id=None))
    assert response.status_code == 200
    assert Event.objects.get().business_id == "6543"


def test_an_event_no_kind_declares_is_refused_where_it_enters(
    client, account, django_capture_on_commit_callbacks
):
    FreshBooksWebhook.objects.create(
        account=account, callback_id=15, event="estimate", uri="https://x.test/", verifier="estimates",
        verified=True,
    )  # fmt: skip
    fields = delivery_fields(name="estimate.create")
    response = deliver(client, django_capture_on_commit_callbacks, fields, verifier="estimates")
    assert response.status_code == 400
    assert response.json() == {
        "error": "Unknown event estimate.create: no FreshBooks kind of the connector declares it."
    }
    assert not Event.objects.exists() and queued() == []


def test_unknown_account_answers_like_a_bad_signature(client, account, django_capture_on_commit_callbacks):
    unknown = deliver(client, django_capture_on_commit_callbacks, delivery_fields(account_id="nope"))
    wrong_business = deliver(client, django_capture_on_commit_callbacks, delivery_fields(business_id="1"))
    body, _ = signed_delivery(delivery_fields(), VERIFIER_A)
    unsigned = post(client, body, {"X-FreshBooks-Hmac-SHA256": "forged"})
    # An unsigned caller cannot tell an unknown account from a known one with a bad signature.
    assert unknown.status_code == wrong_business.status_code == unsigned.status_code == 401
    assert unknown.json() == wrong_business.json() == unsigned.json()
    assert not Event.objects.exists()


def test_inactive_tenant_is_refused_with_403(client, account, django_capture_on_commit_callbacks):
    Tenant.objects.filter(pk=account.tenant_id).update(active=False)
    response = deliver(client, django_capture_on_commit_callbacks, delivery_fields())
    assert response.status_code == 403
    assert not Event.objects.exists() and not queued()


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "multipart/form-data; boundary=x", ""]
)
def test_not_form_encoded_is_415(client, account, content_type):
    body, headers = signed_delivery(delivery_fields(), VERIFIER_A)
    assert post(client, body, headers, content_type=content_type).status_code == 415
    assert not Event.objects.exists()


def test_form_with_charset_is_accepted(client, account, django_capture_on_commit_callbacks):
    body, headers = signed_delivery(delivery_fields(), VERIFIER_A)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, body, headers, content_type=FORM + "; charset=UTF-8")
    assert response.status_code == 200


@pytest.mark.parametrize("drop", ["name", "object_id", "account_id"])
def test_missing_fields_are_400(client, account, drop):
    fields = {k: v for k, v in delivery_fields().items() if k != drop}
    body, headers = signed_delivery(fields, VERIFIER_A)
    response = post(client, body, headers)
    assert response.status_code == 400 and drop in response.json()["error"]
    assert not Event.objects.exists()


@pytest.mark.parametrize("body", [b"name=invoice.create&name=x", b"%%%", b"\xff\xfe", b"a=%00"])
def test_malformed_bodies_are_400(client, account, body):
    assert post(client, body, {"X-FreshBooks-Hmac-SHA256": "x"}).status_code == 400
    assert not Event.objects.exists()


def test_overlong_fields_are_400(client, account, django_capture_on_commit_callbacks):
    response = deliver(client, django_capture_on_commit_callbacks, delivery_fields(object_id="9" * 65))
    assert response.status_code == 400


def test_body_over_64_kib_is_413(client, account, settings):
    fields = {**delivery_fields(), "padding": "x" * settings.WEBHOOK_MAX_BODY}
    body, headers = signed_delivery(fields, VERIFIER_A)
    assert post(client, body, headers).status_code == 413
    # A Content-Length that understates the body does not get more than the limit read either.
    response = client.generic(
        "POST", URL, body, content_type=FORM, headers=headers, CONTENT_LENGTH=str(len(body) - 1)
    )
    assert response.status_code == 413
    assert not Event.objects.exists()


def test_only_post(client, account):
    assert client.get(URL).status_code == 405
    assert client.put(URL, data=b"", content_type=FORM).status_code == 405


def test_duplicate_of_a_queued_event_is_stored_but_not_enqueued(
    client, account, django_capture_on_commit_callbacks
):
    first = deliver(client, django_capture_on_commit_callbacks, delivery_fields())
    # Another delivery for the same object (another user's edit: not the same signed body, so not a replay).
    second = deliver(client, django_capture_on_commit_callbacks, {**delivery_fields(), "user_id": "2"})
    assert first.status_code == second.status_code == 200
    original, duplicate = Event.objects.order_by("id")
    assert (original.status, duplicate.status) == (Event.Status.QUEUED, Event.Status.DUPLICATE)
    assert duplicate.duplicate_of == original
    assert second.json() == {"status": "duplicate", "event": duplicate.pk, "duplicate_of": original.pk}
    assert queued() == [(PROCESS, (original.pk,))]
    # Another object, or the same one once the first is done, is processed again.
    deliver(client, django_capture_on_commit_callbacks, delivery_fields(object_id="999"))
    Event.objects.filter(pk=original.pk).update(status=Event.Status.SUCCEEDED)
    deliver(client, django_capture_on_commit_callbacks, {**delivery_fields(), "user_id": "3"})
    assert len(queued(PROCESS)) == 3
    assert Event.objects.filter(status=Event.Status.QUEUED).count() == 2


def test_broker_failure_keeps_the_event_queued(
    client, account, django_capture_on_commit_callbacks, monkeypatch
):
    from django_q.brokers.orm import ORM

    def broken(self, task):
        raise ConnectionError("broker down")

    monkeypatch.setattr(ORM, "enqueue", broken)  # the broker is the edge here
    response = deliver(client, django_capture_on_commit_callbacks, delivery_fields())
    assert response.status_code == 200
    assert Event.objects.get().status == Event.Status.QUEUED


# The callback handshake ------------------------------------------------------------------------------


@pytest.fixture
def fb_callbacks(settings):
    server = install_callback_routes(make_fake_freshbooks())
    settings.FRESHBOOKS_API_URL = server.url
    yield server
    server.close()


@pytest.fixture
def pending(fb_callbacks, tenant):
    """An account with a freshly registered, unverified callback at the fake."""
    account = connected_account(tenant)
    callback_id = add_callback(fb_callbacks, "invoice.create", registration.webhook_uri())
    hook = FreshBooksWebhook.objects.create(
        account=account, callback_id=callback_id, event="invoice.create", uri=registration.webhook_uri()
    )
    return hook


def test_handshake_stores_verifier_encrypted_and_confirms_it(
    client, fb_callbacks, pending, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, verification_delivery(fb_callbacks, pending.callback_id))
    assert response.status_code == 200
    pending.refresh_from_db()
    real = fb_callbacks.state["callbacks"][pending.callback_id]["verifier"]
    assert pending.verifier == real and not pending.verified
    with connection.cursor() as cursor:
        cursor.execute("SELECT verifier FROM tenants_freshbookswebhook WHERE id = %s", [pending.pk])
        assert real.encode() not in bytes(cursor.fetchone()[0])
    assert queued() == [(CONFIRM_VERIFICATION, (pending.pk,))]  # the id only, never the verifier
    assert run_queued(CONFIRM_VERIFICATION) == ["verified"]
    put = fb_callbacks.calls("PUT", rf"/callbacks/{pending.callback_id}$")[-1]
    assert put.json() == {"callback": {"verifier": real}}
    pending.refresh_from_db()
    assert (
        pending.verified
        and pending.verified_at
        and fb_callbacks.state["callbacks"][pending.callback_id]["verified"]
    )
    # Deliveries signed with that verifier are now accepted.
    fields = delivery_fields()
    assert deliver(client, django_capture_on_commit_callbacks, fields, verifier=real).status_code == 200


def test_forged_handshake_is_refused_by_freshbooks_and_forgotten(
    client, fb_callbacks, pending, django_capture_on_commit_callbacks
):
    forged = verification_delivery(fb_callbacks, pending.callback_id).replace(
        b"verifier=", b"verifier=forged"
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, forged).status_code == 200
    [result] = run_queued(CONFIRM_VERIFICATION)
    assert result.startswith("refused")
    pending.refresh_from_db()
    assert not pending.verified and pending.verifier == ""
    assert not fb_callbacks.state["callbacks"][pending.callback_id]["verified"]


def test_verified_callback_is_not_changed_by_a_new_handshake(
    client, fb_callbacks, pending, django_capture_on_commit_callbacks
):
    hook = FreshBooksWebhook.objects.get(pk=pending.pk)
    hook.verifier, hook.verified = "the-real-one", True
    hook.save()
    forged = verification_delivery(fb_callbacks, pending.callback_id)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, forged)
    assert response.status_code == 200 and response.json()["status"] == "already verified"
    hook.refresh_from_db()
    assert hook.verifier == "the-real-one" and hook.verified and not queued()


def test_handshake_for_unknown_callback_or_account_is_404(client, fb_callbacks, pending):
    body = urlencode(
        {"name": "callback.verify", "object_id": "424242", "account_id": "6BApk", "verifier": "v"}
    )
    assert post(client, body.encode()).status_code == 404
    body = urlencode({"name": "callback.verify", "object_id": "1", "account_id": "unknown", "verifier": "v"})
    assert post(client, body.encode()).status_code == 404
    body = urlencode({"name": "callback.verify", "object_id": "abc", "account_id": "6BApk", "verifier": "v"})
    assert post(client, body.encode()).status_code == 400
    body = urlencode(
        {"name": "callback.verify", "object_id": str(pending.callback_id), "account_id": "6BApk"}
    )
    assert post(client, body.encode()).status_code == 400
    assert not queued() and not FreshBooksWebhook.objects.get(pk=pending.pk).verifier


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_deliveries_enqueue_once():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (row locks and real concurrent connections)")
    import threading

    from django.db import connections
    from django.test import Client

    tenant = Tenant.objects.create(name="Acme Corp", slug="acme")
    account = connected_account(tenant)
    FreshBooksWebhook.objects.create(
        account=account, callback_id=11, event="invoice.create", uri="https://x.test/", verifier=VERIFIER_A,
        verified=True,
    )  # fmt: skip
    # Four copies of one signed body and four other deliveries for the same invoice (other users' edits).
    bodies = [delivery_fields()] * 4 + [{**delivery_fields(), "user_id": str(n)} for n in range(2, 6)]
    barrier, statuses, answers = threading.Barrier(8), [], []

    def send(fields):
        try:
            body, headers = signed_delivery(fields, VERIFIER_A)
            barrier.wait()
            response = post(Client(), body, headers)
            statuses.append(response.status_code)
            answers.append(response.json()["status"])
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(fields,)) for fields in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 8
    # One event per distinct body, only one of them queued; the copies are replays, stored nowhere.
    assert sorted(answers) == sorted(["queued"] + ["duplicate"] * 4 + ["replay"] * 3)
    assert Event.objects.filter(status=Event.Status.QUEUED).count() == 1
    assert Event.objects.filter(status=Event.Status.DUPLICATE).count() == 4
    assert len(queued(PROCESS)) == 1


def test_the_stored_event_and_its_task_are_what_the_orm_would_store(
    client, account, django_capture_on_commit_callbacks
):
    """On PostgreSQL the webhook stores the event and its task in one SQL message (connector.endpoints.store):
    every column as the model would save it, and one task for it; a duplicate gets no task. (On SQLite the
    view's ORM steps run: the same assertions hold.)"""
    answer = deliver(client, django_capture_on_commit_callbacks, delivery_fields())
    assert answer.status_code == 200 and answer.json()["status"] == "queued"
    stored = Event.objects.get(pk=answer.json()["event"])
    given = ("source", "tenant_id", "name", "object_id", "account_id", "business_id", "payload", "body_hash")
    same = Event(status=Event.Status.QUEUED, **{name: getattr(stored, name) for name in given})
    same.save()
    same.refresh_from_db()
    for field in Event._meta.concrete_fields:
        if field.name not in ("id", "received_at"):
            assert getattr(stored, field.attname) == getattr(same, field.attname), field.name
    assert stored.payload == delivery_fields() and stored.status == Event.Status.QUEUED
    assert queued(PROCESS) == [(PROCESS, (stored.pk,))]
    other_user = deliver(client, django_capture_on_commit_callbacks, {**delivery_fields(), "user_id": "2"})
    assert other_user.json()["status"] == "duplicate" and queued(PROCESS) == [(PROCESS, (stored.pk,))]
