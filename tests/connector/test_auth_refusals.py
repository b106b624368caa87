"""Refused credentials stop the connection, visibly: "Needs reconnect" with the reason, one alert, no further
calls until an operator fixes it — for API-token and personal-access-token sites (401) and Data Center's
CAPTCHA lock-out (403 with X-Authentication-Denied-Reason / X-Seraph-LoginReason)."""

import time

import pytest
import responses

from audit.models import Alert, Event
from connector.errors import JiraError
from connector.jira.client import JiraClient
from connector.sandbox.jira import API_TOKEN, EMAIL
from tenants.checks import check_jira
from tenants.models import ConnectionStatus, JiraSite
from tests.processing import process, run_queued

BASE = "https://jira.example.com"


@pytest.fixture
def site(tenant):
    return JiraSite.objects.create(
        tenant=tenant,
        base_url=BASE,
        deployment=JiraSite.Deployment.SERVER,
        email="ops",
        api_token="tok",
        status=ConnectionStatus.CONNECTED,
    )


def reconnect_alerts():
    return Alert.objects.filter(kind=Alert.Kind.NEEDS_RECONNECT)


@responses.activate
def test_an_expired_api_token_marks_the_site_and_stops_calls(
    site, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.ADMINS = [("Ops", "ops@example.com")]
    responses.get(
        f"{BASE}/rest/api/2/myself", status=401, json={"errorMessages": ["You are not authenticated."]}
    )
    client = JiraClient(site, sleep=lambda s: None)
    for _ in range(3):
        with pytest.raises(JiraError) as raised, django_capture_on_commit_callbacks(execute=True):
            client.myself()
        assert raised.value.needs_reconnect and not raised.value.transient
        assert raised.value.detail.startswith("Reconnect required: Jira refused the API token")
    site.refresh_from_db()
    assert site.status == ConnectionStatus.NEEDS_RECONNECT and "API token" in site.last_error
    assert len(responses.calls) == 1  # stopped: the next calls were not made
    run_queued("audit.tasks.mail_alert")  # the worker mails alerts
    assert reconnect_alerts().count() == 1 and len(mailoutbox) == 1
    assert "API token" in mailoutbox[0].body and "tok" not in mailoutbox[0].body.split()


@responses.activate
def test_a_personal_access_token_refused_marks_the_site(site):
    site.auth_method, site.email = JiraSite.AuthMethod.PAT, ""
    site.save()
    responses.get(f"{BASE}/rest/api/2/serverInfo", status=401, json={})
    with pytest.raises(JiraError) as raised:
        JiraClient(site, sleep=lambda s: None).server_info()
    assert raised.value.needs_reconnect
    assert responses.calls[0].request.headers["Authorization"] == "Bearer tok"
    site.refresh_from_db()
    assert site.status == ConnectionStatus.NEEDS_RECONNECT and "personal access token" in site.last_error


@responses.activate
def test_a_captcha_lock_out_marks_the_site_with_the_reason(site):
    responses.post(
        f"{BASE}/rest/api/2/issue",
        status=403,
        body="<html>CAPTCHA</html>",
        content_type="text/html",
        headers={
            "X-Authentication-Denied-Reason": f"CAPTCHA_CHALLENGE; login-url={BASE}/login.jsp",
            "X-Seraph-LoginReason": "AUTHENTICATION_DENIED",
        },
    )
    with pytest.raises(JiraError) as raised:
        JiraClient(site, sleep=lambda s: None).create_issue({"summary": "x"})
    assert raised.value.needs_reconnect and "CAPTCHA_CHALLENGE" in str(raised.value)
    site.refresh_from_db()
    assert site.status == ConnectionStatus.NEEDS_RECONNECT and "CAPTCHA" in site.last_error
    assert reconnect_alerts().count() == 1


@responses.activate
def test_a_permission_403_is_not_a_refusal(site):
    responses.get(f"{BASE}/rest/api/2/project/FIN", status=403, json={"errorMessages": ["No permission."]})
    with pytest.raises(JiraError) as raised:
        JiraClient(site, sleep=lambda s: None).project("FIN")
    assert not raised.value.needs_reconnect
    site.refresh_from_db()
    assert site.status == ConnectionStatus.CONNECTED


@pytest.mark.parametrize("jira", ["server"], indirect=True)
def test_an_expiring_token_on_the_fake_fails_events_visibly_and_a_new_token_reconnects(connected, fb, jira):
    """Loopback: the fake Data Center's API token expires; the first event fails with the reason, the site
    turns "Needs reconnect" with one alert, the next event makes no Jira call; a new token and Test
    connection bring it back."""
    jira.state["token_expires_at"] = time.time() - 1
    first = process(connected, "invoice.create", 987654)
    assert first.status == Event.Status.FAILED
    assert first.status_detail.startswith("Reconnect required: Jira refused the API token")
    assert "Internal error" not in first.status_detail
    site = JiraSite.objects.get(tenant=connected)
    assert site.status == ConnectionStatus.NEEDS_RECONNECT
    calls = len(jira.calls())
    second = process(connected, "invoice.create", 987654)  # delivered again
    assert second.status == Event.Status.FAILED and second.status_detail.startswith("Reconnect required")
    assert len(jira.calls()) == calls  # no call on a stopped site
    assert reconnect_alerts().count() == 1

    jira.state["token_expires_at"] = None
    site.api_token = API_TOKEN  # the operator saved a new token (the fake accepts the old one again)
    site.email = EMAIL
    site.save()
    results = check_jira(connected)
    assert results[0].ok, results
    site.refresh_from_db()
    assert site.status == ConnectionStatus.CONNECTED and site.last_error == ""


@pytest.mark.parametrize("jira", ["server"], indirect=True)
def test_the_fake_locks_basic_sign_in_behind_a_captcha(connected, fb, jira):
    site = JiraSite.objects.get(tenant=connected)
    site.api_token = "wrong"
    site.save()
    jira.state["captcha_after"] = 0
    event = process(connected, "invoice.create", 987654)
    site.refresh_from_db()
    assert site.status == ConnectionStatus.NEEDS_RECONNECT and "CAPTCHA" in site.last_error
    assert "CAPTCHA" in event.status_detail and "Internal error" not in event.status_detail
