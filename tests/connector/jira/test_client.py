"""Unit tests of the Jira client at the network edge (responses): flow control, retries, errors, OAuth."""

import json
from datetime import timedelta

import pytest
import requests
import responses
from django.conf import settings
from django.utils import timezone

from connector.errors import MustWait
from connector.jira.client import JiraClient, JiraError
from tenants.models import ConnectionStatus, JiraSite
from tests.factories import JiraSiteFactory

BASE = "https://acme.atlassian.net"
API = f"{BASE}/rest/api/3"
ISSUE = {"fields": {"project": {"key": "FIN"}, "issuetype": {"name": "Task"}, "summary": "x"}}


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


@pytest.fixture
def site(tenant):
    return JiraSiteFactory(tenant=tenant, base_url=BASE, api_token="tok", status=ConnectionStatus.CONNECTED)


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def jira_client(site, sleeps):
    return JiraClient(site, sleep=sleeps)


@responses.activate
def test_429_waits_for_retry_after_then_succeeds(jira_client, sleeps):
    responses.get(f"{API}/myself", status=429, headers={"Retry-After": "7"}, json={})
    responses.get(f"{API}/myself", json={"accountId": "a"})
    assert jira_client.myself() == {"accountId": "a"}
    assert sleeps == [7.0]


@responses.activate
def test_429_without_retry_after_backs_off_exponentially_with_jitter(jira_client, sleeps):
    for _ in range(3):
        responses.post(f"{API}/issue", status=429, json={})
    responses.post(f"{API}/issue", status=201, json={"id": "1", "key": "FIN-1"})
    assert jira_client.create_issue(ISSUE["fields"])["key"] == "FIN-1"
    assert len(sleeps) == 3
    for attempt, delay in enumerate(sleeps, start=1):
        assert 2**attempt * 0.5 <= delay <= 2**attempt
    assert len(responses.calls) == 4  # a 429 was not applied, so re-sending a POST is safe


@responses.activate
def test_endless_429_backs_off_then_the_event_waits_instead_of_failing(jira_client, sleeps):
    """No reason header (a per-second limit): ≥ 1 s doubling with jitter within the call's 60 s budget; past it
    the call raises MustWait (the event waits until Jira's asked time), not a failure. Nothing was written."""
    responses.post(f"{API}/issue", status=429, headers={"Retry-After": "1"}, json={})
    with pytest.raises(MustWait) as raised:
        jira_client.create_issue(ISSUE["fields"])
    assert raised.value.transient and not raised.value.ambiguous and raised.value.until > timezone.now()
    assert len(sleeps) == 5 and sum(sleeps) <= 60 and sleeps[1] >= 2 * sleeps[0] * 2 / 3


@responses.activate
def test_a_retry_after_longer_than_the_call_budget_defers_instead_of_failing(jira_client, sleeps):
    """Old main: Retry-After 50 → three POSTs inside the window, then the event failed as transient. Now: one wait
    that fits, then MustWait until Jira's time: two POSTs, and the event will wait."""
    responses.post(f"{API}/issue", status=429, headers={"Retry-After": "50"}, json={})
    with pytest.raises(MustWait) as raised:
        jira_client.create_issue(ISSUE["fields"])
    assert sleeps == [50.0] and len(responses.calls) == 2
    assert (
        49 <= (raised.value.until - timezone.now()).total_seconds() <= 101
    )  # 50 s after the (fake) first wait


@responses.activate
def test_5xx_on_get_is_retried(jira_client, sleeps):
    responses.get(f"{API}/issue/FIN-1", status=503, json={})
    responses.get(f"{API}/issue/FIN-1", json={"id": "1", "key": "FIN-1", "fields": {}})
    assert jira_client.get_issue("FIN-1")["key"] == "FIN-1"
    assert len(responses.calls) == 2 and len(sleeps) == 1


@responses.activate
def test_post_is_never_resent_after_5xx_and_is_ambiguous(jira_client, sleeps):
    responses.post(f"{API}/issue", status=500, json={"errorMessages": ["Internal server error"]})
    with pytest.raises(JiraError) as raised:
        jira_client.create_issue(ISSUE["fields"], properties={"ml-connector": {"object_id": "1"}})
    assert raised.value.ambiguous and raised.value.transient
    assert len(responses.calls) == 1
    sent = json.loads(responses.calls[0].request.body)
    assert sent["properties"] == [{"key": "ml-connector", "value": {"object_id": "1"}}]


@responses.activate
def test_post_is_never_resent_after_a_read_timeout(jira_client, sleeps):
    responses.post(f"{API}/issue/FIN-1/worklog", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(JiraError, match="No answer from Jira") as raised:
        jira_client.add_worklog("FIN-1", {"started": "2026-01-01T00:00:00.000+0000", "timeSpentSeconds": 60})
    assert raised.value.ambiguous
    assert len(responses.calls) == 1


@responses.activate
def test_rejections_carry_jiras_messages_readably(jira_client):
    responses.post(
        f"{API}/issue",
        status=400,
        json={
            "errorMessages": ["Field 'priority' is required"],
            "errors": {"labels": "The label 'a b' can't contain spaces."},
        },
    )
    with pytest.raises(JiraError) as raised:
        jira_client.create_issue(ISSUE["fields"])
    message = str(raised.value)
    assert "400" in message and "Field 'priority' is required" in message
    assert "labels: The label 'a b' can't contain spaces." in message
    assert not raised.value.transient and not raised.value.ambiguous


@responses.activate
def test_404_means_none_or_already_gone(jira_client):
    responses.get(f"{API}/issue/FIN-9", status=404, json={"errorMessages": ["Issue does not exist"]})
    responses.delete(f"{API}/issue/FIN-9/worklog/5", status=404, json={})
    responses.delete(f"{API}/issue/FIN-9", status=404, json={})
    assert jira_client.get_issue("FIN-9") is None
    assert jira_client.delete_worklog("FIN-9", "5") is False
    assert jira_client.delete_issue("FIN-9") is False


@responses.activate
def test_search_jql_follows_next_page_tokens(jira_client):
    responses.get(f"{API}/search/jql", json={"issues": [{"id": "1"}], "nextPageToken": "p2", "isLast": False})
    responses.get(f"{API}/search/jql", json={"issues": [{"id": "2"}], "isLast": True})
    assert [i["id"] for i in jira_client.search_jql('labels = "x"')] == ["1", "2"]
    first, second = (call.request for call in responses.calls)
    assert "nextPageToken" not in first.params and second.params["nextPageToken"] == "p2"
    assert first.params["fields"] == "summary,labels"


@responses.activate
def test_server_search_uses_v2_search_with_start_at(jira_client, site):
    site.deployment = JiraSite.Deployment.SERVER
    responses.get(f"{BASE}/rest/api/2/search", json={"issues": [{"id": "1"}], "total": 2, "startAt": 0})
    responses.get(f"{BASE}/rest/api/2/search", json={"issues": [{"id": "2"}], "total": 2, "startAt": 1})
    assert [i["id"] for i in jira_client.search_jql("project = FIN")] == ["1", "2"]
    assert responses.calls[1].request.params["startAt"] == "1"


@responses.activate
def test_find_user_by_email(jira_client):
    responses.get(f"{API}/user/search", json=[
        {"accountId": "a1", "emailAddress": "other@x.test", "active": True},
        {"accountId": "a2", "emailAddress": "Jane@X.test", "active": True},
    ])  # fmt: skip
    responses.get(f"{API}/user/search", json=[{"accountId": "a3", "active": True}])  # email hidden
    responses.get(f"{API}/user/search", json=[])
    assert jira_client.find_user("jane@x.test") == "a2"
    # A single fuzzy hit whose email is hidden could be anyone: not taken (finding 9 of issue 14).
    assert jira_client.find_user("hidden@x.test") is None
    assert jira_client.find_user("nobody@x.test") is None
    assert jira_client.find_user("") is None


def oauth_site(site):
    """Make `site` an OAuth 2.0 site; returns the gateway URL of /myself."""
    site.auth_method = JiraSite.AuthMethod.OAUTH2
    site.cloud_id = "cloud-1"
    site.access_token, site.refresh_token = "old-access", "refresh-1"
    site.token_expires_at = timezone.now() + timedelta(hours=1)
    site.save()
    return f"{settings.ATLASSIAN_API_URL}/ex/jira/cloud-1/rest/api/3/myself"


def answer_token_refresh():
    responses.post(
        f"{settings.ATLASSIAN_AUTH_URL}/oauth/token",
        json={
            "access_token": "new-access",
            "refresh_token": "refresh-2",
            "expires_in": 3600,
            "token_type": "Bearer",
        },
    )


@responses.activate
def test_oauth_401_refreshes_once_and_retries(site, sleeps):
    gateway = oauth_site(site)
    responses.get(gateway, status=401, json={"message": "Unauthorized"})
    responses.get(gateway, json={"accountId": "a"})
    answer_token_refresh()
    assert JiraClient(site, sleep=sleeps).myself() == {"accountId": "a"}
    auth = [c.request.headers.get("Authorization") for c in responses.calls if "/ex/jira/" in c.request.url]
    assert auth == ["Bearer old-access", "Bearer new-access"]
    site.refresh_from_db()
    assert site.refresh_token == "refresh-2"


@responses.activate
def test_oauth_second_401_is_an_error_not_a_loop(site, sleeps):
    gateway = oauth_site(site)
    responses.get(gateway, status=401, json={"message": "Unauthorized"})
    answer_token_refresh()
    with pytest.raises(JiraError) as raised:
        JiraClient(site, sleep=sleeps).myself()
    assert raised.value.status == 401
    assert len([c for c in responses.calls if "/oauth/token" in c.request.url]) == 1
