"""Issue 14, findings 4 and 5: the stored API token only goes where it was checked, vendor URLs are https on a
public address (unless ALLOW_LOCAL_VENDOR_URLS), and connection errors never echo what the remote answered."""

import base64
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from tenants import tokens
from tenants.models import ConnectionStatus, JiraSite
from tenants.vendor_urls import check_vendor_url
from tests.fakes.jira import API_TOKEN, EMAIL
from tests.tenants.test_tokens import make_account
from tests.tenants.test_views import jira_site_form

pytestmark = pytest.mark.django_db


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


def test_a_refused_token_refresh_shows_the_error_code_not_the_vendor_text(tenant, fb_auth):
    remote = "INTERNAL: refresh store at 10.0.0.7 unavailable"
    fb_auth.state["token_error"] = (400, {"error": "invalid_grant", "error_description": remote})
    account = make_account(tenant, expires_in=-timedelta(minutes=1))
    with pytest.raises(tokens.ReconnectRequired):
        tokens.access_token(account)
    account.refresh_from_db()
    assert "invalid_grant" in account.last_error and remote not in account.last_error


def test_a_non_jira_answer_never_reaches_the_webhook_status(tenant, fake_jira, api_token_site):
    from connector.jira import registration

    internal = "<html>INTERNAL: intranet admin console, build 4.2</html>"
    fake_jira.state["fail_next"] = [
        {"method": "GET", "path": "/rest/webhooks", "status": 502, "body": internal}
    ] * 3
    assert not registration.register(api_token_site, actor="test")
    api_token_site.refresh_from_db()
    assert "502" in api_token_site.webhook_error and "INTERNAL" not in api_token_site.webhook_error
