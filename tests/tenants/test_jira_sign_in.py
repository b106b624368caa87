"""Data Center sign-in (personal access tokens, Basic with a user name, keys with underscores, its rate-limit
headers) and credentials that expire (warned 30 and 7 days before; scoped API tokens through the gateway)."""

import io
from datetime import date, timedelta

import pytest
import responses
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from audit.models import Alert
from audit.overview import tenant_health
from connector.jira.client import JiraClient
from connector.models import IssueMapping, WorklogRule
from connector.sandbox.freshbooks_records import put
from connector.sandbox.jira import FakeJira, install_core_routes
from tenants.checks import check_jira
from tenants.expiry import warn_expiring
from tenants.models import ConnectionStatus, JiraSite, Tenant
from tests.processing import process, run_queued, worklogs

PAT = "NjQ5OTM4MzA3NzM4OpersonalAccessToken"
ENTRY = 123456  # java-sdk/get_time_entry_response.json


@pytest.fixture
def dc():
    """A Data Center that refuses Basic (PAT only, as when passwords are switched off) and accepts the PAT."""
    jira = install_core_routes(FakeJira(deployment="server", bearer_tokens={PAT}))
    jira.state["pat_only"] = True
    yield jira
    jira.close()


def site_form(tenant, url, **fields):
    return {
        "tenant": tenant.pk,
        "base_url": url,
        "auth_method": "basic",
        "email": "",
        "api_token": "",
        **fields,
    }


# --- personal access tokens -------------------------------------------------------------------------------


def test_a_pat_only_data_center_is_added_in_the_admin_with_a_personal_access_token(staff_client, tenant, dc):
    response = staff_client.post(
        reverse("admin:tenants_jirasite_add"), site_form(tenant, dc.url, auth_method="pat", api_token=PAT)
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    site = JiraSite.objects.get(tenant=tenant)
    assert (site.auth_method, site.deployment, site.status) == ("pat", "server", ConnectionStatus.CONNECTED)
    assert {r.headers["authorization"] for r in dc.calls()} == {f"Bearer {PAT}"}


def test_create_tenant_and_check_connections_take_a_personal_access_token(dc, db, monkeypatch):
    monkeypatch.setenv("JIRA_API_TOKEN", PAT)
    call_command(
        "create_tenant",
        "--name",
        "Initech",
        "--slug",
        "initech",
        "--jira-url",
        dc.url,
        "--jira-auth",
        "pat",
        "--jira-project",
        "FIN",
        "--expires-on",
        "2027-03-01",
        stdout=io.StringIO(),
    )
    site = JiraSite.objects.get(tenant__slug="initech")
    assert (site.auth_method, site.email, site.credentials_expire_on) == ("pat", "", date(2027, 3, 1))
    assert site.status == ConnectionStatus.CONNECTED
    assert check_jira(site.tenant)[0].ok


def test_basic_with_a_pat_is_refused_with_a_hint(staff_client, tenant, dc):
    response = staff_client.post(
        reverse("admin:tenants_jirasite_add"), site_form(tenant, dc.url, email="ops", api_token=PAT)
    )
    assert response.status_code == 200 and "refused" in response.content.decode()
    assert not JiraSite.objects.exists()


# --- Basic with a user name ---------------------------------------------------------------------------------


def test_server_basic_accepts_a_user_name(staff_client, tenant):
    jira = install_core_routes(FakeJira(deployment="server", email="jsmith", api_token="s3cret"))
    try:
        response = staff_client.post(
            reverse("admin:tenants_jirasite_add"),
            site_form(tenant, jira.url, email="jsmith", api_token="s3cret"),
        )
        assert response.status_code == 302, response.content.decode()[:3000]
    finally:
        jira.close()
    assert JiraSite.objects.get(tenant=tenant).email == "jsmith"


def test_create_tenant_accepts_a_user_name(db, monkeypatch):
    jira = install_core_routes(FakeJira(deployment="server", email="jsmith", api_token="s3cret"))
    monkeypatch.setenv("JIRA_API_TOKEN", "s3cret")
    try:
        call_command(
            "create_tenant",
            "--name",
            "Globex",
            "--slug",
            "globex",
            "--jira-url",
            jira.url,
            "--jira-email",
            "jsmith",
            "--jira-project",
            "FIN",
            stdout=io.StringIO(),
        )
    finally:
        jira.close()
    assert JiraSite.objects.get(tenant__slug="globex").status == ConnectionStatus.CONNECTED


# --- issue keys with underscores ----------------------------------------------------------------------------


@pytest.mark.parametrize("jira", ["server"], indirect=True)
def test_a_note_naming_an_underscore_key_gets_the_worklog(connected, fb, jira):
    jira.state["projects"]["FIN_OPS"] = {
        "id": "10001",
        "key": "FIN_OPS",
        "name": "Ops",
        "issueTypes": ["Task"],
    }
    jira.state["issues"]["FIN_OPS-7"] = {
        "id": "30007",
        "key": "FIN_OPS-7",
        "fields": {"summary": "x"},
        "properties": {},
        "hidden_searches": 0,
        "created": 0,
    }
    IssueMapping.objects.filter(tenant=connected).update(project_key="FIN_OPS")  # the tenant's project
    WorklogRule.objects.create(tenant=connected, match_kind="note_key", order=0)
    put(fb, "time_entry", {**fb.samples["time_entry"], "note": "Call about FIN_OPS-7 (not OPS-7)"})
    event = process(connected, "time_entry.create", ENTRY)
    assert event.status == "succeeded", event.status_detail
    assert event.jira_key == "FIN_OPS-7" and len(worklogs(jira)) == 1


def test_the_worklog_rule_admin_reads_underscore_keys_and_refuses_others(staff_client, tenant):
    url = reverse("admin:connector_worklogrule_add")
    form = {
        "tenant": tenant.pk,
        "match_kind": "project",
        "match_value": "654321",
        "order": 0,
        "enabled": "on",
    }
    bad = staff_client.post(url, {**form, "issue_key": "FIN OPS 7"})
    assert bad.status_code == 200 and "FIN_OPS-7" in bad.content.decode()
    assert staff_client.post(url, {**form, "issue_key": "fin_ops-7"}).status_code == 302
    assert WorklogRule.objects.get().issue_key == "FIN_OPS-7"


# --- Data Center rate-limit headers ---------------------------------------------------------------------------


@responses.activate
def test_data_center_rate_limit_headers_are_acted_on_only_with_a_429(tenant):
    site = JiraSite.objects.create(
        tenant=tenant,
        base_url="https://jira.example.com",
        deployment="server",
        auth_method="pat",
        api_token=PAT,
        status=ConnectionStatus.CONNECTED,
    )
    limits = {
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Interval-Seconds": "1",
        "X-RateLimit-FillRate": "10",
    }
    responses.get(
        "https://jira.example.com/rest/api/2/myself",
        json={"name": "ops"},
        headers={**limits, "retry-after": "0"},
    )
    responses.get(
        "https://jira.example.com/rest/api/2/serverInfo",
        status=429,
        json={},
        headers={**limits, "retry-after": "5"},
    )
    responses.get("https://jira.example.com/rest/api/2/serverInfo", json={"deploymentType": "Server"})
    sleeps = []
    client = JiraClient(site, sleep=sleeps.append)
    assert client.myself() == {"name": "ops"} and sleeps == []  # a 200 with retry-after: 0 is no wait
    assert client.server_info()["deploymentType"] == "Server" and sleeps == [5.0]


# --- credentials that expire --------------------------------------------------------------------------------


@pytest.fixture
def expiring(tenant):
    return JiraSite.objects.create(
        tenant=tenant,
        base_url="https://acme.atlassian.net",
        email="ops@acme.test",
        api_token="t",
        status=ConnectionStatus.CONNECTED,
    )


def test_an_expiring_api_token_is_warned_at_30_and_7_days_once_each(expiring, settings, mailoutbox):
    settings.ADMINS = [("Ops", "ops@example.com")]
    today = timezone.localdate()
    expiring.credentials_expire_on = today + timedelta(days=45)
    expiring.save()
    assert warn_expiring() == 0
    expiring.credentials_expire_on = today + timedelta(days=25)
    expiring.save()
    assert warn_expiring() == 1 and warn_expiring() == 0  # once
    assert warn_expiring(timezone.now() + timedelta(days=2)) == 0  # still the 30-day warning: no new mail
    assert warn_expiring(timezone.now() + timedelta(days=19)) == 1  # 6 days left: the 7-day warning
    assert warn_expiring(timezone.now() + timedelta(days=20)) == 0
    run_queued("audit.tasks.mail_alert")
    assert len(mailoutbox) == 2
    assert f"expires on {expiring.credentials_expire_on:%Y-%m-%d}" in mailoutbox[0].body
    assert "t" not in mailoutbox[0].body.split()  # never the token
    assert Alert.objects.filter(kind=Alert.Kind.TOKEN_EXPIRING).count() == 2


def test_the_health_panel_shows_an_expiring_token(expiring):
    expiring.credentials_expire_on = timezone.localdate() + timedelta(days=6)
    expiring.save()
    (row,) = tenant_health()
    assert (
        row.attention
        and f"Jira token expires {expiring.credentials_expire_on:%Y-%m-%d}" in row.needs_reconnect
    )
    JiraSite.objects.filter(pk=expiring.pk).update(
        credentials_expire_on=timezone.localdate() + timedelta(days=90)
    )
    (row,) = tenant_health()
    assert not row.needs_reconnect


def test_the_site_form_takes_the_expiry_date(staff_client, tenant, fake_jira):
    response = staff_client.post(
        reverse("admin:tenants_jirasite_add"),
        site_form(
            tenant,
            fake_jira.url,
            email="ops@acme.test",
            api_token="jira-api-token",
            credentials_expire_on="2027-01-31",
        ),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert JiraSite.objects.get(tenant=tenant).credentials_expire_on == date(2027, 1, 31)


def test_a_scoped_api_token_is_used_through_the_gateway_url(staff_client, tenant):
    """Scoped API tokens must be used through https://api.atlassian.com/ex/jira/{cloudId} with Basic."""
    gateway = install_core_routes(FakeJira(cloud_id="c0ffee"))
    try:
        url = f"{gateway.url}/ex/jira/c0ffee"
        response = staff_client.post(
            reverse("admin:tenants_jirasite_add"),
            site_form(tenant, url, email="ops@acme.test", api_token="jira-api-token"),
        )
        assert response.status_code == 302, response.content.decode()[:3000]
        assert {r.path for r in gateway.calls()} >= {"/rest/api/3/serverInfo", "/rest/api/3/myself"}
    finally:
        gateway.close()
    site = JiraSite.objects.get(tenant=tenant)
    assert site.deployment == "cloud" and site.status == ConnectionStatus.CONNECTED
    assert Tenant.objects.count() == 1
