"""Every permanent refusal of a token endpoint (a 4xx with an OAuth ``error``) marks the connection "Needs
reconnect" with the vendor's message and stops refresh requests; outages stay transient. Both vendors
(research row 02: Atlassian answers a dead refresh token with 403 unauthorized_client)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from connector.freshbooks.client import FreshBooksClient
from connector.jira.client import JiraClient
from tenants import tokens
from tenants.models import ConnectionStatus, JiraSite
from tests.fakes.atlassian import CLOUD_ID
from tests.fakes.server import Response
from tests.tenants.test_tokens import make_account, refresh_requests

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_grace(monkeypatch):
    monkeypatch.setattr(tokens, "INVALID_GRANT_GRACE", 0.0)


def expired_site(tenant):
    return JiraSite.objects.create(
        tenant=tenant, base_url="https://acme.atlassian.net", cloud_id=CLOUD_ID,
        auth_method=JiraSite.AuthMethod.OAUTH2, access_token="expired", refresh_token="atl-refresh-0",
        token_expires_at=timezone.now() - timedelta(minutes=1), status=ConnectionStatus.CONNECTED,
    )  # fmt: skip


def test_atlassian_unauthorized_client_needs_reconnect_and_three_calls_send_one_refresh(tenant, atl):
    atl.state["on_refresh"] = lambda request: Response(
        403, {"error": "unauthorized_client", "error_description": "refresh_token is invalid"}
    )
    site = expired_site(tenant)

    for _ in range(3):
        with pytest.raises(tokens.ReconnectRequired, match="unauthorized_client"):
            JiraClient(JiraSite.objects.get(pk=site.pk)).myself()

    assert len(atl.calls("POST", "/oauth/token")) == 1
    site.refresh_from_db()
    assert site.status == ConnectionStatus.NEEDS_RECONNECT
    assert (
        "unauthorized_client" in site.last_error
    )  # the OAuth error code; the vendor's free text only logged
    assert site.refresh_token == "atl-refresh-0"  # credentials are kept


@pytest.mark.parametrize(
    ("status", "error"), [(401, "invalid_client"), (400, "access_denied"), (400, "unauthorized_client")]
)
def test_freshbooks_permanent_refusals_need_reconnect(tenant, fb_auth, status, error):
    fb_auth.state["on_refresh"] = lambda request: Response(
        status, {"error": error, "error_description": "nope"}
    )
    account = make_account(tenant, expires_in=-timedelta(minutes=1))

    for _ in range(3):
        with pytest.raises(tokens.ReconnectRequired, match=error):
            FreshBooksClient(type(account).objects.get(pk=account.pk)).me()

    assert len(refresh_requests(fb_auth)) == 1
    account.refresh_from_db()
    assert account.status == ConnectionStatus.NEEDS_RECONNECT and error in account.last_error


@pytest.mark.parametrize(
    "answer",
    [
        Response(503, {"error": "server_error", "error_description": "down"}),
        Response(400, {"error": "temporarily_unavailable"}),
        Response(429, {"error": "rate_limited"}),
        Response(403, "<h1>Forbidden by a proxy</h1>"),
    ],
)
def test_outages_stay_transient_and_the_connection_stays_connected(tenant, fb_auth, atl, answer):
    fb_auth.state["on_refresh"] = atl.state["on_refresh"] = lambda request: answer
    account, site = make_account(tenant, expires_in=-timedelta(minutes=1)), expired_site(tenant)

    for conn in (account, site):
        with pytest.raises(tokens.TokenRefreshError):
            tokens.access_token(conn)
        conn.refresh_from_db()
        assert conn.status == ConnectionStatus.CONNECTED and not conn.last_error
    with pytest.raises(tokens.TokenRefreshError):  # tried again on the next call
        tokens.access_token(account)
    assert len(refresh_requests(fb_auth)) == 2


def test_reconnecting_clears_the_stop(tenant, atl):
    atl.state["on_refresh"] = lambda request: Response(403, {"error": "unauthorized_client"})
    site = expired_site(tenant)
    with pytest.raises(tokens.ReconnectRequired):
        tokens.access_token(site)
    atl.state["on_refresh"] = None
    atl.state["refresh_tokens"].add("atl-refresh-new")
    JiraSite.objects.filter(pk=site.pk).update(  # what the OAuth callback saves on reconnect
        status=ConnectionStatus.CONNECTED, last_error="", refresh_token="atl-refresh-new"
    )
    site.refresh_from_db()
    assert tokens.access_token(site).startswith("atl-access-")
