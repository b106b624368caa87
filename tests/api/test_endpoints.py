"""The operator API per endpoint and per role: who may read what, who may act, that actions do what the admin
does and are recorded the same way, and that no secret — nor, without audit.view_sensitive_data, any decrypted
payload, record or body — is ever in an answer."""

import json
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone
from django_q.models import OrmQ

from audit.models import Attempt, Event
from audit.overview import tenant_health
from connector.models import ReconcileState
from tenants.models import ConnectionStatus, FreshBooksAccount, FreshBooksWebhook, JiraSite, Tenant

pytestmark = pytest.mark.django_db

SECRETS = {
    "fb_access": "SECRET-fb-access-7c1d",
    "fb_refresh": "SECRET-fb-refresh-91ab",
    "verifier": "SECRET-verifier-55e0",
    "jira_api_token": "SECRET-jira-token-a3f9",
    "jira_webhook_secret": "SECRET-jira-hook-0b6e",
}
SENSITIVE = {
    "payload": "PAYLOAD-mark-2d4",
    "record": "RECORD-mark-8e1",
    "request": "REQUEST-mark-4c7",
    "response": "RESPONSE-mark-f90",
    "previous": "PREVIOUS-mark-31a",
}
READERS = ("viewer", "operator", "administrator")
OPS = ("operator", "administrator")


@pytest.fixture
def world(tenant):
    """A tenant whose Jira site needs a reconnect, with every kind of secret and sensitive value stored."""
    account = FreshBooksAccount.objects.create(
        tenant=tenant, account_id="6BApk", business_id="77", access_token=SECRETS["fb_access"],
        refresh_token=SECRETS["fb_refresh"], status=ConnectionStatus.CONNECTED,
    )  # fmt: skip
    FreshBooksWebhook.objects.create(
        account=account, callback_id=1, event="invoice.create", uri="https://x.test/webhooks/freshbooks/",
        verifier=SECRETS["verifier"], verified=False,
    )  # fmt: skip
    JiraSite.objects.create(
        tenant=tenant, base_url="https://acme.atlassian.test", email="ops@acme.test",
        api_token=SECRETS["jira_api_token"], webhook_secret=SECRETS["jira_webhook_secret"],
        status=ConnectionStatus.NEEDS_RECONNECT,
    )  # fmt: skip
    failed = Event.objects.create(
        tenant=tenant, name="invoice.create", object_id="42", status="failed", status_detail="Jira answered 400",
        payload={"note": SENSITIVE["payload"]}, record={"notes": SENSITIVE["record"]},
    )  # fmt: skip
    Attempt.objects.create(
        event=failed, action="POST /rest/api/3/issue", request={"json": SENSITIVE["request"]},
        response=SENSITIVE["response"], previous={"before": SENSITIVE["previous"]}, http_status=400,
    )  # fmt: skip
    queued = Event.objects.create(tenant=tenant, name="time_entry.create", object_id="7", status="queued")
    jira_event = Event.objects.create(
        tenant=tenant, source="jira", name="jira:issue_deleted", object_id="10001", status="succeeded"
    )
    ReconcileState.objects.create(
        tenant=tenant, last_result="ok", last_started_at=timezone.now(), last_finished_at=timezone.now(),
        last_detail="listed 3 record(s)", last_actor="schedule",
    )  # fmt: skip
    other = Tenant.objects.create(name="Beta Ltd", slug="beta")
    Event.objects.create(tenant=other, name="bill.create", object_id="9", status="succeeded")
    return {"tenant": tenant, "failed": failed, "queued": queued, "jira": jira_event, "other": other}


def body(response):
    return json.loads(response.content)


def assert_no_secret(response):
    text = response.content.decode()
    assert not [name for name, value in SECRETS.items() if value in text]


# --- authentication --------------------------------------------------------------------------------------------


def test_anonymous_and_staff_without_permissions_are_refused_everywhere(api, world):
    event = world["failed"]
    reads = ["/api/v1/tenants/", "/api/v1/tenants/acme/", "/api/v1/events/", f"/api/v1/events/{event.pk}/"]
    posts = [f"/api/v1/events/{event.pk}/replay/", "/api/v1/events/replay/",
             f"/api/v1/events/{event.pk}/rollback/", "/api/v1/tenants/acme/reconcile/"]  # fmt: skip
    for path in reads + posts + ["/api/v1/me/"]:
        send = api.get if path in reads or path.endswith("/me/") else api.post
        anonymous = send(path, "anonymous")
        assert anonymous.status_code == 401, path
        assert body(anonymous) == {"detail": "Authentication credentials were not provided."}
        assert anonymous["WWW-Authenticate"] == 'Token realm="api"'
        if not path.endswith("/me/"):
            refused = send(path, "nobody")
            assert refused.status_code == 403, path
            assert body(refused) == {"detail": "You do not have permission to perform this action."}
    assert not OrmQ.objects.exists()


def test_a_session_of_a_staff_user_works_too_and_a_non_staff_one_does_not(
    client, users, world, django_user_model
):
    client.force_login(users["viewer"])
    assert client.get("/api/v1/tenants/").status_code == 200
    client.force_login(django_user_model.objects.create_user("customer", password="pass-123456789"))
    assert client.get("/api/v1/tenants/").status_code == 403


# --- tenants ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", READERS)
def test_tenants_with_their_health_as_the_admin_panel_computes_it(api, world, role):
    listed = api.get("/api/v1/tenants/", role)

    assert listed.status_code == 200
    page = body(listed)
    assert page["count"] == 2 and [t["slug"] for t in page["results"]] == ["acme", "beta"]
    health = page["results"][0]["health"]
    panel = next(item for item in tenant_health() if item.tenant.slug == "acme")
    assert health["failed_24h"] == panel.failed_24h == 1
    assert health["attention"] is panel.attention is True
    assert health["connections"] == {"freshbooks": "connected", "jira": "needs_reconnect",
                                     "needs_reconnect": ["Jira"]}  # fmt: skip
    assert health["webhooks"] == {"jira": "not set up", "freshbooks_callbacks": 1, "freshbooks_unverified": 1}
    assert (
        health["backlog"]["queued"] == 1
        and health["backlog"]["waiting"] == 0
        and health["backlog"]["oldest_queued_seconds"] >= 0
    )
    assert health["last_reconcile"] == panel.last_reconcile and health["last_reconcile"].startswith(
        "clean at"
    )
    assert health["reconcile"]["result"] == "ok" and health["reconcile"]["actor"] == "schedule"
    assert page["results"][1]["health"]["reconcile"] is None
    assert page["results"][1]["health"]["connections"]["freshbooks"] == "disconnected"
    assert_no_secret(listed)

    one = api.get("/api/v1/tenants/acme/", role)
    assert one.status_code == 200
    assert (
        body(one)["health"]["backlog"]["oldest_queued_seconds"] >= health["backlog"]["oldest_queued_seconds"]
    )
    assert {**body(one)["health"], "backlog": None} == {**health, "backlog": None}
    assert_no_secret(one)


def test_tenants_filter_paginate_and_answer_404_in_drf_shape(api, world):
    world["other"].active = False
    world["other"].save()
    assert [t["slug"] for t in body(api.get("/api/v1/tenants/", "viewer", active="false"))["results"]] == [
        "beta"
    ]
    paged = body(api.get("/api/v1/tenants/", "viewer", page_size=1, page=2))
    assert paged["count"] == 2 and [t["slug"] for t in paged["results"]] == ["beta"] and paged["next"] is None
    for path, params in (("/api/v1/tenants/nope/", {}), ("/api/v1/tenants/", {"page": 9}),
                         ("/api/v1/tenants/%C3%A9/", {}), ("/api/v1/nothing/", {})):  # fmt: skip
        missing = api.get(path, "viewer", **params)
        assert missing.status_code == 404 and set(body(missing)) == {"detail"}, path
    bad = api.get("/api/v1/tenants/", "viewer", active="maybe")
    assert bad.status_code == 400 and "active" in body(bad)


# --- events ----------------------------------------------------------------------------------------------------


def test_events_filters(api, world):
    def ids(**params):
        answer = api.get("/api/v1/events/", "viewer", **params)
        assert answer.status_code == 200, answer.content
        return {event["id"] for event in body(answer)["results"]}

    failed, queued, jira = world["failed"].pk, world["queued"].pk, world["jira"].pk
    assert ids(tenant="acme") == {failed, queued, jira}
    assert ids(tenant="acme", status=["failed", "queued"]) == {failed, queued}
    assert ids(kind="time_entry") == {queued}
    assert ids(source="jira") == {jira}
    assert ids(name="invoice.create", object_id="42") == {failed}
    Event.objects.filter(pk=failed).update(failure_reason="Jira answered <n>")
    assert ids(failure_reason="Jira answered <n>") == {failed}
    Event.objects.filter(pk=failed).update(received_at=timezone.now() - timedelta(days=3))
    assert ids(tenant="acme", received_before=(timezone.now() - timedelta(days=1)).isoformat()) == {failed}
    assert failed not in ids(received_after=(timezone.now() - timedelta(days=1)).isoformat())
    assert ids(received_after="2000-01-01T00:00:00") >= {failed}  # a naive time is UTC
    for bad in ({"status": "lost"}, {"kind": "spaceship"}, {"received_after": "yesterday"},
                {"received_before": "0001-01-01T00:00:00+14:00"}, {"tenant": "a\x00b"}):  # fmt: skip
        answer = api.get("/api/v1/events/", "viewer", **bad)
        assert answer.status_code == 400, bad
        assert set(body(answer)) == set(bad), body(answer)  # DRF's field errors, by parameter


@pytest.mark.parametrize("role", READERS)
def test_event_list_never_shows_payloads(api, world, role):
    answer = api.get("/api/v1/events/", role)
    assert answer.status_code == 200
    text = answer.content.decode()
    assert not [name for name, value in SENSITIVE.items() if value in text]
    assert "payload" not in body(answer)["results"][0]


@pytest.mark.parametrize("role", READERS)
def test_event_detail_decrypts_only_for_the_sensitive_permission(api, world, role):
    answer = api.get(f"/api/v1/events/{world['failed'].pk}/", role)

    assert answer.status_code == 200
    event = body(answer)
    assert event["status"] == "failed" and event["kind"] == "invoice" and event["tenant"] == "acme"
    (attempt,) = event["attempts"]
    assert attempt["action"] == "POST /rest/api/3/issue" and attempt["http_status"] == 400
    text = answer.content.decode()
    shown = [name for name, value in SENSITIVE.items() if value in text]
    if role == "viewer":
        assert shown == [] and event["sensitive_data_shown"] is False
        assert event["payload"] is event["record"] is attempt["request"] is attempt["response"] is None
    else:
        assert shown == list(SENSITIVE) and event["sensitive_data_shown"] is True
        assert event["payload"] == {"note": SENSITIVE["payload"]}
    assert_no_secret(answer)


def test_attempts_need_their_own_view_permission(api, world, users, django_user_model):
    from django.contrib.auth.models import Permission

    users["nobody"].user_permissions.add(Permission.objects.get(codename="view_event"))
    event = body(api.get(f"/api/v1/events/{world['failed'].pk}/", "nobody"))
    assert event["attempts"] is None and event["payload"] is None


# --- replay ----------------------------------------------------------------------------------------------------


def test_viewer_may_not_replay(api, world):
    for path, data in ((f"/api/v1/events/{world['failed'].pk}/replay/", {}),
                       ("/api/v1/events/replay/", {"ids": [world["failed"].pk]})):  # fmt: skip
        assert api.post(path, "viewer", data).status_code == 403
    assert Event.objects.get(pk=world["failed"].pk).status == "failed" and not OrmQ.objects.exists()


@pytest.mark.parametrize("role", OPS)
def test_replay_dry_run_then_for_real_recorded_as_the_admin_records_it(api, world, users, role):
    event = world["failed"]
    dry = api.post(f"/api/v1/events/{event.pk}/replay/", role, {"dry_run": True})
    assert dry.status_code == 200
    assert body(dry) == {"dry_run": True, "queued": [event.pk], "refused": [], "not_found": []}
    event.refresh_from_db()
    assert event.status == "failed" and not OrmQ.objects.exists()

    done = api.post(f"/api/v1/events/{event.pk}/replay/", role)

    assert done.status_code == 200 and body(done)["queued"] == [event.pk]
    event.refresh_from_db()
    assert event.status == "queued" and event.replay_requested_by == f"api:{role}"
    assert f"Replay requested by api:{role}" in event.status_detail
    assert OrmQ.objects.count() == 1
    entry = LogEntry.objects.get(object_id=str(event.pk))
    assert entry.user == users[role] and entry.change_message == f"Replay requested by api:{role}"


def test_bulk_replay_reports_refused_and_unknown_ids(api, world):
    world["queued"].status = "rolled_back"
    world["queued"].save()
    ids = [world["failed"].pk, world["queued"].pk, world["jira"].pk, 999999]

    answer = body(api.post("/api/v1/events/replay/", "operator", {"ids": ids}))

    assert answer["queued"] == [world["failed"].pk] and answer["not_found"] == [999999]
    assert {r["id"]: r["reason"] for r in answer["refused"]} == {
        world["queued"].pk: "it is rolled back",
        world["jira"].pk: "only FreshBooks events are replayed",
    }
    for bad in ({}, {"ids": []}, {"ids": ["x"]}, {"ids": [0]}, {"ids": list(range(1, 502))},
                {"ids": [2**70]}, {"ids": [1], "dry_run": "perhaps"}, [1, 2], "text"):  # fmt: skip
        refused = api.post("/api/v1/events/replay/", "operator", bad)
        assert refused.status_code == 400, bad
    not_json = api.client.post("/api/v1/events/replay/", "ids=1", content_type="application/x-www-form-urlencoded",
                               **api.headers("operator"))  # fmt: skip
    assert not_json.status_code == 415 and set(body(not_json)) == {"detail"}
    broken = api.client.post(
        "/api/v1/events/replay/", "{", content_type="application/json", **api.headers("operator")
    )
    assert broken.status_code == 400 and body(broken)["detail"].startswith("JSON parse error")


# --- reconcile -------------------------------------------------------------------------------------------------


def test_reconcile_now_is_queued_for_operators_only(api, world, users):
    assert api.post("/api/v1/tenants/acme/reconcile/", "viewer").status_code == 403
    assert not OrmQ.objects.exists()

    answer = api.post("/api/v1/tenants/acme/reconcile/", "operator")

    assert answer.status_code == 202 and body(answer)["tenant"] == "acme"
    (task,) = OrmQ.objects.all()
    assert task.task["func"] == "connector.reconcile.reconcile_task"
    assert task.task["args"] == (world["tenant"].pk,) and task.task["kwargs"] == {"actor": "api:operator"}
    assert LogEntry.objects.get(object_id=str(world["tenant"].pk)).user == users["operator"]
    unconnected = api.post("/api/v1/tenants/beta/reconcile/", "operator")
    assert unconnected.status_code == 409 and "no FreshBooks account" in body(unconnected)["detail"]
    assert api.post("/api/v1/tenants/nope/reconcile/", "operator").status_code == 404


# --- me --------------------------------------------------------------------------------------------------------


def test_me_says_who_and_what_they_may_do(api, users, tokens):
    viewer = body(api.get("/api/v1/me/", "viewer"))
    assert viewer["username"] == "viewer" and viewer["groups"] == ["viewer"]
    assert viewer["may"] == {"view_tenants": True, "view_events": True, "view_sensitive_data": False,
                             "replay": False, "rollback": False, "reconcile": False, "pause": False}  # fmt: skip
    assert viewer["token"]["name"] == "viewer script" and tokens["viewer"].startswith(
        f"mlc_{viewer['token']['prefix']}_"
    )
    operator = body(api.get("/api/v1/me/", "operator"))
    assert all(operator["may"].values())
    assert not any(body(api.get("/api/v1/me/", "nobody"))["may"].values())


# --- pause and resume ------------------------------------------------------------------------------------------


def test_pause_and_resume_for_operators_only_recorded_as_the_admin_records_it(api, world, users):
    tenant = world["tenant"]
    assert api.post("/api/v1/tenants/acme/pause/", "viewer").status_code == 403
    tenant.refresh_from_db()
    assert tenant.paused_at is None

    paused = api.post("/api/v1/tenants/acme/pause/", "operator", {"note": "Jira migration"})

    assert paused.status_code == 200
    answer = body(paused)
    assert answer["paused"] is answer["changed"] is True and answer["paused_by"] == "api:operator"
    tenant.refresh_from_db()
    assert tenant.paused_at and tenant.pause_note == "Jira migration"
    assert LogEntry.objects.get(object_id=str(tenant.pk)).change_message == "Paused the sync: Jira migration"
    again = body(api.post("/api/v1/tenants/acme/pause/", "operator", {"note": "other"}))
    assert again["changed"] is False and again["pause_note"] == "Jira migration"
    assert body(api.get("/api/v1/tenants/acme/", "viewer"))["paused_by"] == "api:operator"
    held = Event.objects.create(tenant=tenant, name="invoice.create", object_id="5", status="waiting",
                                wait_reason="tenant paused")  # fmt: skip
    assert api.post("/api/v1/tenants/acme/resume/", "viewer").status_code == 403

    resumed = body(api.post("/api/v1/tenants/acme/resume/", "administrator"))

    assert resumed == {**resumed, "paused": False, "changed": True, "queued": 1}
    held.refresh_from_db()
    assert held.status == "queued"
    assert body(api.post("/api/v1/tenants/acme/resume/", "administrator"))["changed"] is False
    for bad in ({"note": "x" * 1001}, {"note": ["a"]}, {"note": "a\x00b"}):
        assert api.post("/api/v1/tenants/acme/pause/", "operator", bad).status_code == 400, bad


# --- throttling ------------------------------------------------------------------------------------------------


def test_calls_and_actions_are_throttled_per_user_with_drf_s_429(api, world, settings):
    settings.API_THROTTLE_RATE, settings.API_ACTION_THROTTLE_RATE = "5/min", "2/min"
    replay = f"/api/v1/events/{world['failed'].pk}/replay/"
    answers = [api.post(replay, "operator", {"dry_run": True}).status_code for _ in range(3)]
    assert answers == [200, 200, 429]
    assert api.get("/api/v1/tenants/", "operator").status_code == 200  # reads are not actions
    assert api.post(replay, "administrator", {"dry_run": True}).status_code == 200  # counted per user
    assert api.get("/api/v1/tenants/", "operator").status_code == 200
    throttled = api.get("/api/v1/tenants/", "operator")  # the 6th call of this user in the minute
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
    assert body(throttled)["detail"].startswith("Request was throttled.")
