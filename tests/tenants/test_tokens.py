"""Race-safe token refresh (one code path for FreshBooks and Jira OAuth) against the loopback token endpoints.

The two concurrency tests need real row locks and run on PostgreSQL only (CI runs PostgreSQL).
"""

import queue
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from connector.freshbooks.client import FreshBooksClient
from connector.jira.client import JiraClient
from connector.sandbox.atlassian import CLOUD_ID
from connector.sandbox.freshbooks import ACCOUNT_ID, BUSINESS_ID
from connector.sandbox.freshbooks_auth import REFRESH_TOKEN
from connector.sandbox.server import Response
from tenants import tasks, tokens
from tenants.models import ConnectionStatus, FreshBooksAccount, JiraSite
from tests.threads import run_in_threads

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL row locks (select_for_update); SQLite serialises whole transactions. CI runs PostgreSQL.",
)
TOKEN_PATH = "/auth/oauth/token"


def make_account(tenant, *, expires_in, access="old-access", refresh=REFRESH_TOKEN, **extra):
    return FreshBooksAccount.objects.create(
        tenant=tenant, account_id=ACCOUNT_ID, business_id=BUSINESS_ID, access_token=access, refresh_token=refresh,
        token_expires_at=timezone.now() + expires_in, status=ConnectionStatus.CONNECTED, **extra,
    )  # fmt: skip


def refresh_requests(fb_auth):
    return [r for r in fb_auth.calls("POST", TOKEN_PATH) if r.form().get("grant_type") == "refresh_token"]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_callers_cause_one_refresh(tenant, fb_auth):
    account = make_account(tenant, expires_in=-timedelta(minutes=1))

    def slow_refresh(request):
        time.sleep(0.3)  # widen the window in which the other 19 callers queue up

    fb_auth.state["on_refresh"] = slow_refresh
    barrier = threading.Barrier(20)
    seen = {}

    def caller(i):
        mine = FreshBooksAccount.objects.get(pk=account.pk)
        barrier.wait()
        seen[i] = FreshBooksClient(mine).me()["identity_id"] and mine.access_token

    run_in_threads(caller, [(i,) for i in range(20)])

    assert len(refresh_requests(fb_auth)) == 1
    account.refresh_from_db()
    assert account.access_token.startswith("fb-access-") and account.refresh_token != REFRESH_TOKEN
    assert set(seen.values()) == {account.access_token} and len(seen) == 20
    me_calls = fb_auth.calls("GET", "/auth/api/v1/users/me")
    assert [c.headers["authorization"] for c in me_calls] == [f"Bearer {account.access_token}"] * 20


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_lost_race_then_invalid_grant_recovers_by_rereading(tenant, fb_auth):
    account = make_account(tenant, expires_in=-timedelta(minutes=1))
    fb_auth.state["access_tokens"].add("winner-access")

    def another_worker_wins(request):
        # Another worker (holding the same refresh token) saves its new pair; its write waits for our lock ...
        winner_pid = queue.Queue()

        def write():
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    winner_pid.put(cursor.fetchone()[0])
                FreshBooksAccount.objects.filter(pk=account.pk).update(
                    access_token="winner-access", refresh_token="winner-refresh",
                    token_expires_at=timezone.now() + timedelta(hours=12),
                )  # fmt: skip
            finally:
                connections.close_all()

        threading.Thread(target=write).start()
        pid = winner_pid.get(timeout=10)
        try:
            with connection.cursor() as cursor:
                for _ in range(200):  # ... until it is queued on the row lock
                    cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
                    if (cursor.fetchone() or [None])[0] == "Lock":
                        break
                    time.sleep(0.05)
                else:
                    raise AssertionError("the other worker's write never waited for the row lock")
        finally:
            connections.close_all()
        # ... and the vendor has already rotated the refresh token we sent.
        return Response(400, {"error": "invalid_grant", "error_description": "refresh token already used"})

    fb_auth.state["on_refresh"] = another_worker_wins

    assert tokens.access_token(account) == "winner-access"
    assert FreshBooksClient(account).me()["identity_id"] == 12345
    account.refresh_from_db()
    assert account.status == ConnectionStatus.CONNECTED and account.last_error == ""
    assert account.refresh_token == "winner-refresh"
    assert len(refresh_requests(fb_auth)) == 1


@pytest.mark.django_db
def test_a_401_triggers_one_refresh_and_one_retry(tenant, fb_auth):
    account = make_account(tenant, expires_in=timedelta(hours=6), access="revoked-access")  # looks fresh

    me = FreshBooksClient(account).me()

    assert me["identity_id"] == 12345
    calls = fb_auth.calls("GET", "/auth/api/v1/users/me")
    assert len(calls) == 2 and calls[0].headers["authorization"] == "Bearer revoked-access"
    assert len(refresh_requests(fb_auth)) == 1
    account.refresh_from_db()
    assert calls[1].headers["authorization"] == f"Bearer {account.access_token}"
    assert (
        account.refresh_token.startswith("fb-refresh-")
        and REFRESH_TOKEN not in fb_auth.state["refresh_tokens"]
    )


@pytest.mark.django_db
def test_a_second_401_is_not_retried_forever(tenant, fb_auth):
    account = make_account(tenant, expires_in=timedelta(hours=6), access="revoked-access")
    fb_auth.state["on_refresh"] = lambda request: Response(
        200,
        {"access_token": "also-rejected", "refresh_token": "r2", "expires_in": 43200, "token_type": "Bearer"},
    )
    with pytest.raises(Exception, match="401"):
        FreshBooksClient(account).me()
    assert len(fb_auth.calls("GET", "/auth/api/v1/users/me")) == 2 and len(refresh_requests(fb_auth)) == 1


@pytest.mark.django_db
def test_invalid_grant_marks_needs_reconnect_and_keeps_credentials(tenant, fb_auth):
    account = make_account(tenant, expires_in=-timedelta(minutes=1), refresh="dead-refresh")

    with pytest.raises(tokens.ReconnectRequired, match="connect again"):
        tokens.access_token(account)

    account.refresh_from_db()
    assert account.status == ConnectionStatus.NEEDS_RECONNECT
    assert "invalid" in account.last_error and "connect again" in account.last_error
    assert (account.access_token, account.refresh_token) == ("old-access", "dead-refresh")
    with pytest.raises(tokens.ReconnectRequired):  # no further refresh attempt burns anything
        tokens.access_token(account)
    assert len(refresh_requests(fb_auth)) == 1


@pytest.mark.django_db
def test_token_endpoint_outage_is_transient(tenant, fb_auth):
    account = make_account(tenant, expires_in=-timedelta(minutes=1))
    fb_auth.state["on_refresh"] = lambda request: Response(503, "<h1>Service Unavailable</h1>")
    with pytest.raises(tokens.TokenRefreshError):
        tokens.access_token(account)
    account.refresh_from_db()
    assert account.status == ConnectionStatus.CONNECTED and account.refresh_token == REFRESH_TOKEN


@pytest.mark.django_db
def test_refresh_margin(tenant, fb_auth):
    soon = make_account(tenant, expires_in=timedelta(minutes=2), access="soon")
    assert tokens.access_token(soon) != "soon"
    assert len(refresh_requests(fb_auth)) == 1
    later = FreshBooksAccount.objects.get(pk=soon.pk)
    later.token_expires_at = timezone.now() + timedelta(hours=1)
    assert tokens.access_token(later) == later.access_token
    assert len(refresh_requests(fb_auth)) == 1


@pytest.mark.django_db
def test_jira_oauth_site_uses_the_same_refresh_path(tenant, atl):
    auth, jira = atl, atl.jira
    auth.state["refresh_tokens"].add("atl-refresh-0")
    site = JiraSite.objects.create(
        tenant=tenant, base_url="https://acme.atlassian.net", cloud_id=CLOUD_ID,
        auth_method=JiraSite.AuthMethod.OAUTH2, access_token="revoked", refresh_token="atl-refresh-0",
        token_expires_at=timezone.now() + timedelta(minutes=50), status=ConnectionStatus.CONNECTED,
    )  # fmt: skip

    assert JiraClient(site).myself()["displayName"] == "Ops Bot"

    site.refresh_from_db()
    assert site.refresh_token != "atl-refresh-0", "the rotated refresh token is saved"
    assert "atl-refresh-0" not in auth.state["refresh_tokens"]
    assert len(auth.calls("POST", "/oauth/token")) == 1
    assert not jira.spec_errors


@pytest.mark.django_db
def test_scheduled_task_refreshes_idle_connections_only(tenant, fb_auth, atl):
    auth = atl
    idle = make_account(
        tenant, expires_in=timedelta(hours=6), last_refreshed_at=timezone.now() - timedelta(days=8)
    )
    other = tenant.__class__.objects.create(name="Busy", slug="busy")
    busy = FreshBooksAccount.objects.create(
        tenant=other, account_id="BUSY1", business_id="1", access_token="busy", refresh_token="busy-refresh",
        status=ConnectionStatus.CONNECTED, last_refreshed_at=timezone.now() - timedelta(hours=1),
    )  # fmt: skip
    JiraSite.objects.create(
        tenant=other, base_url="https://busy.atlassian.net", email="a@b.test", api_token="x",
        status=ConnectionStatus.CONNECTED, last_refreshed_at=None,
    )  # fmt: skip

    assert tasks.refresh_idle_tokens() == {"refreshed": 1, "needs_reconnect": 0, "failed": 0}

    idle.refresh_from_db()
    busy.refresh_from_db()
    assert idle.refresh_token != REFRESH_TOKEN and idle.last_refreshed_at > timezone.now() - timedelta(
        minutes=1
    )
    assert busy.access_token == "busy"
    assert not auth.calls("POST", "/oauth/token"), "API-token sites have nothing to refresh"


@pytest.mark.django_db
def test_refresh_schedule_is_registered_once():
    from django_q.models import Schedule

    from config.queueing import ensure_schedules
    from tenants.schedules import SCHEDULES

    ensure_schedules(SCHEDULES)
    ensure_schedules(SCHEDULES)
    schedule = Schedule.objects.get(name="Refresh idle OAuth tokens")
    assert schedule.func == "tenants.tasks.refresh_idle_tokens" and schedule.schedule_type == Schedule.DAILY
