"""Tokens and transactions: a rotated refresh token is stored for good whatever transaction the caller is in; no
vendor call waits inside a web request's database transaction; a dynamic delivery's check is one try."""

from datetime import timedelta

import pytest
import responses
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from connector import http, ledger, ledger_undo, transport
from connector.errors import TokenRefreshError
from connector.jira.client import JiraClient
from connector.models import Link
from connector.sandbox.atlassian import CLIENT_SECRET, CLOUD_ID
from connector.sandbox.jira import FakeJira, install_core_routes
from connector.sandbox.jira_issues import install_issue_routes
from connector.transport import TransactionOpen
from tenants import tokens
from tenants.models import ConnectionStatus, JiraSite
from tests.connector.endpoints import test_jira
from tests.connector.endpoints.test_jira import cloud_issue_deleted, link
from tests.factories import EventFactory

ISSUE_DELETED = cloud_issue_deleted() | {"matchedWebhookIds": [1001]}


def post_dynamic(client, body):
    """A dynamic delivery signed with the OAuth client secret the fake Atlassian knows."""
    return test_jira.post_dynamic(client, body, auth=f"Bearer {test_jira.token(secret=CLIENT_SECRET)}")


def in_code_transaction():
    """Whether the code (not the test case's wrapper) holds a transaction open now."""
    return any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


@pytest.fixture
def sends(monkeypatch):
    """Every vendor request sent, with whether a transaction was open at that moment."""
    seen, real = [], http.send

    def spy(method, url, **kwargs):
        seen.append((method, url, in_code_transaction()))
        return real(method, url, **kwargs)

    monkeypatch.setattr(http, "send", spy)
    return seen


@pytest.fixture
def oauth_site(tenant, atl, settings):
    """An OAuth site whose access token has expired: the first call refreshes (the fake rotates the token)."""
    settings.ATLASSIAN_CLIENT_SECRET = CLIENT_SECRET
    atl.state["refresh_tokens"].add("atl-refresh-0")
    return JiraSite.objects.create(  # the site of the webhook samples (their "self" links)
        tenant=tenant,
        base_url="https://zulipp.atlassian.net",
        cloud_id=CLOUD_ID,
        auth_method=JiraSite.AuthMethod.OAUTH2,
        status=ConnectionStatus.CONNECTED,
        webhook_ids=[1001],
        access_token="expired",
        refresh_token="atl-refresh-0",
        token_expires_at=timezone.now() - timedelta(minutes=1),
    )


def test_a_dynamic_delivery_keeps_the_rotated_refresh_token_when_jira_answers_503(
    client, tenant, atl, oauth_site
):
    """The example: the delivery's check refreshes the expired token, then Jira answers 503. The rotated refresh
    token is stored for good (not rolled back with the delivery), so Jira's retry works: no "Needs reconnect"."""
    row = link(tenant, 1, jira_issue_id="10000", jira_issue_key="TEST-1")
    atl.jira.state["fail_next"] = [("GET", r"issue/10000", 503)] * 3
    response = post_dynamic(client, ISSUE_DELETED)
    assert response.status_code == 503
    oauth_site.refresh_from_db()
    assert oauth_site.refresh_token in atl.state["refresh_tokens"], (
        "the rotated refresh token is the one stored"
    )
    atl.jira.state["fail_next"] = []
    assert post_dynamic(client, ISSUE_DELETED).status_code == 200, "Jira sends it again: it goes through"
    oauth_site.refresh_from_db()
    assert oauth_site.status == ConnectionStatus.CONNECTED
    assert Link.objects.get(pk=row.pk).state == Link.State.DELETED


def test_a_refresh_inside_a_callers_transaction_never_loses_the_rotated_token(tenant, atl, oauth_site):
    """Another place of the kind (e.g. the ledger's locked block that then fails): the refresh is not made
    inside the caller's transaction, so nothing the vendor rotated can be rolled back."""
    with pytest.raises(RuntimeError), transaction.atomic():
        with pytest.raises(TokenRefreshError, match="deferred"):
            tokens.refresh(oauth_site, stale_token="expired")
        raise RuntimeError("the caller's transaction fails and rolls back")
    oauth_site.refresh_from_db()
    assert oauth_site.refresh_token in atl.state["refresh_tokens"], "the stored refresh token is still good"
    assert tokens.access_token(oauth_site).startswith("atl-access-")  # outside: refreshed and committed
    oauth_site.refresh_from_db()
    assert oauth_site.refresh_token in atl.state["refresh_tokens"]


def test_the_dynamic_delivery_asks_jira_outside_the_storing_transaction(
    client, tenant, atl, oauth_site, sends
):
    link(tenant, 1, jira_issue_id="10000", jira_issue_key="TEST-1")
    assert post_dynamic(client, ISSUE_DELETED).status_code == 200
    jira_calls = [sent for sent in sends if "/rest/api/" in sent[1]]
    assert jira_calls and not any(open_ for _m, _u, open_ in jira_calls), sends


def test_the_admin_site_form_probes_jira_outside_a_transaction(staff_client, tenant, sends):
    """Another place of the kind: Django runs a POSTed change form in a transaction; the site's probe
    (serverInfo, myself) must not wait inside it."""
    jira = install_core_routes(FakeJira())
    try:
        form = {
            "tenant": tenant.pk,
            "base_url": jira.url,
            "auth_method": "basic",
            "email": "ops@acme.test",
            "api_token": "jira-api-token",
        }
        response = staff_client.post(reverse("admin:tenants_jirasite_add"), form)
        assert response.status_code == 302, response.content.decode()[:2000]
    finally:
        jira.close()
    assert sends and not any(open_ for _m, _u, open_ in sends), sends


def test_the_dynamic_delivery_check_is_one_try_and_passes_jiras_retry_after_on(
    client, tenant, atl, oauth_site
):
    """Against a 429: one GET (not a burst of retries while Jira waits for the answer), and Jira is answered
    503 with its own Retry-After so it sends the delivery again later."""
    link(tenant, 1, jira_issue_id="10000", jira_issue_key="TEST-1")
    tokens.access_token(oauth_site)  # a fresh token: only the check's own GET is counted
    atl.jira.state["fail_next"] = [
        {"method": "GET", "path": r"issue/10000", "status": 429, "headers": {"Retry-After": "90"}}
    ] * 6
    response = post_dynamic(client, ISSUE_DELETED)
    assert response.status_code == 503 and response["Retry-After"] == "90"
    assert len(atl.jira.calls("GET", r"issue/10000")) == 1


@responses.activate
def test_the_transport_refuses_a_vendor_call_inside_a_web_requests_transaction(tenant):
    """The guard: in a web request, a vendor call made while a transaction is open fails loudly — without any
    exception: the ledger's writes under their row lock too (a web request queues them for the worker)."""
    site = JiraSite.objects.create(
        tenant=tenant,
        base_url="https://acme.atlassian.net",
        email="a@b.test",
        api_token="t",
        status=ConnectionStatus.CONNECTED,
    )
    responses.get("https://acme.atlassian.net/rest/api/3/myself", json={"accountId": "a"})
    row = link(tenant, 1, jira_issue_id="10000", jira_issue_key="TEST-1")
    fields = {"project": {"key": "FIN"}, "issuetype": {"name": "Task"}, "summary": "Invoice 0042"}
    transport._request_started()  # what the request_started signal does (sending it would close connections)
    try:
        with pytest.raises(TransactionOpen), transaction.atomic():
            JiraClient(site).myself()
        with pytest.raises(TransactionOpen, match="DELETE"):
            ledger_undo.rollback_link(client=JiraClient(site), link=row)
        with pytest.raises(TransactionOpen, match="POST"):
            ledger.ensure_issue(
                client=JiraClient(site), tenant=tenant, object_type="invoice", object_id="7", fields=fields
            )
        assert JiraClient(site).myself() == {"accountId": "a"}  # outside a transaction: fine
    finally:
        transport._request_finished()
    assert Link.objects.get(pk=row.pk).state == Link.State.CREATED, "nothing was written"
    assert not hasattr(transport, "locked_write"), "no declared exemption remains"
    assert [call.request.method for call in responses.calls] == ["GET"]
    with transaction.atomic():  # a worker (no web request) is not concerned
        assert JiraClient(site).myself() == {"accountId": "a"}


def test_a_401_inside_the_ledgers_locked_write_refreshes_outside_and_creates_once(tenant, atl, oauth_site):
    """An OAuth access token Jira no longer takes before its expiry (revoked, or rotated by another process) is
    answered 401 on the issue create, inside the ledger's locked block, where no refresh may run: the block is
    left (a 401 wrote nothing), the token is refreshed outside it, committed, and the create sent once more."""
    install_issue_routes(atl.jira)
    JiraSite.objects.filter(pk=oauth_site.pk).update(
        access_token="revoked-early", token_expires_at=timezone.now() + timedelta(hours=1)
    )
    oauth_site.refresh_from_db()
    event = EventFactory(tenant=tenant)
    fields = {"project": {"key": "FIN"}, "issuetype": {"name": "Task"}, "summary": "Invoice 0042"}

    made = ledger.ensure_issue(
        client=JiraClient(oauth_site, event=event), tenant=tenant, object_type="invoice", object_id="42",
        fields=fields, event=event,
    )  # fmt: skip

    assert made.state == Link.State.CREATED and made.jira_issue_key
    assert [issue["key"] for issue in atl.jira.state["issues"].values()] == [made.jira_issue_key]
    assert [
        call.http_status for call in event.attempt_set.filter(action__startswith="POST").order_by("id")
    ] == [
        401,
        201,
    ]
    oauth_site.refresh_from_db()
    assert oauth_site.status == ConnectionStatus.CONNECTED and oauth_site.access_token != "revoked-early"
    assert oauth_site.refresh_token in atl.state["refresh_tokens"], "the rotated refresh token is stored"


def test_a_401_inside_a_rollbacks_locked_delete_refreshes_outside_and_deletes(tenant, atl, oauth_site):
    """Another place of the kind: the worker's rollback deletes under the link's row lock; Jira's 401 there
    leaves the lock (the link unchanged), the token is refreshed outside and the delete sent once more."""
    install_issue_routes(atl.jira)
    atl.jira.state["issues"]["FIN-1"] = {"id": "10000", "key": "FIN-1", "fields": {"summary": "Invoice 0042"},
                                         "properties": {}, "hidden_searches": 0, "created": 0}  # fmt: skip
    row = link(tenant, 1, jira_issue_id="10000", jira_issue_key="FIN-1")
    JiraSite.objects.filter(pk=oauth_site.pk).update(
        access_token="revoked-early", token_expires_at=timezone.now() + timedelta(hours=1)
    )
    oauth_site.refresh_from_db()
    event = EventFactory(tenant=tenant)

    undone, removed = ledger_undo.rollback_link(
        client=JiraClient(oauth_site, event=event), link=row, event=event
    )

    assert removed and undone.state == Link.State.ROLLED_BACK and "FIN-1" not in atl.jira.state["issues"]
    assert [a.http_status for a in event.attempt_set.filter(action__startswith="DELETE").order_by("id")] == [
        401,
        204,
    ]
    oauth_site.refresh_from_db()
    assert oauth_site.refresh_token in atl.state["refresh_tokens"]
