"""Acceptance: an operator connects FreshBooks and Jira from the admin in a real browser (the system Chromium,
headless, driven by Playwright), approving on fake vendor authorize pages served on loopback."""

import pytest

from tenants.models import ConnectionStatus, FreshBooksAccount, JiraSite, Tenant
from tests.fakes.atlassian import CLOUD_ID, make_fake_atlassian
from tests.fakes.freshbooks import make_fake_freshbooks
from tests.fakes.freshbooks_auth import install_auth_routes
from tests.fakes.jira import FakeJira, install_core_routes

pytestmark = pytest.mark.browser


@pytest.fixture
def vendors(settings, live_server):
    fb = install_auth_routes(make_fake_freshbooks())
    jira = install_core_routes(FakeJira(cloud_id=CLOUD_ID))
    atlassian = make_fake_atlassian(jira)
    settings.PUBLIC_BASE_URL = live_server.url
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    settings.FRESHBOOKS_API_URL = settings.FRESHBOOKS_AUTH_URL = fb.url
    settings.ATLASSIAN_AUTH_URL, settings.ATLASSIAN_API_URL = atlassian.url, jira.url
    yield fb, atlassian
    for server in (fb, atlassian, jira):
        server.close()
    assert not jira.spec_errors


@pytest.mark.django_db(transaction=True)
def test_operator_connects_freshbooks_and_jira_in_the_browser(live_server, vendors, page, django_user_model):
    fb, atlassian = vendors
    django_user_model.objects.create_user(
        "operator", password="operator-pass-123", is_staff=True, is_superuser=True
    )
    tenant = Tenant.objects.create(name="Acme Corp", slug="acme")

    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "operator-pass-123")
    page.click("input[type=submit]")
    page.get_by_role("link", name="Tenants", exact=True).click()
    page.get_by_role("link", name="Acme Corp").click()
    assert "not connected" in page.inner_text("#freshbooks-connection")

    # FreshBooks
    page.get_by_role("link", name="Connect FreshBooks").click()
    page.get_by_role("button", name="Continue to FreshBooks").click()  # the confirmation page POSTs
    page.wait_for_url(f"{fb.url}/oauth/authorize?*")
    assert "user:invoices:read" in page.inner_text("#scope")
    page.get_by_role("button", name="Approve").click()
    page.wait_for_url(f"{live_server.url}/admin/tenants/tenant/{tenant.pk}/change/")
    assert "Acme Books" in page.inner_text("#freshbooks-connection")
    assert "Connected" in page.inner_text("#freshbooks-connection")
    assert "FreshBooks business Acme Books is connected" in page.inner_text(".messagelist")

    # Jira (OAuth 2.0 3LO)
    page.get_by_role("link", name="Connect Jira (OAuth)").click()
    page.get_by_role("button", name="Continue to Jira").click()
    page.wait_for_url(f"{atlassian.url}/authorize?*")
    page.get_by_role("button", name="Approve").click()
    page.wait_for_url(f"{live_server.url}/admin/tenants/tenant/{tenant.pk}/change/")
    jira_text = page.inner_text("#jira-connection")
    assert "acme.atlassian.net" in jira_text and "OAuth 2.0 (3LO)" in jira_text and "Connected" in jira_text
    assert "Jira site acme is connected" in page.inner_text(".messagelist")

    account = FreshBooksAccount.objects.get(tenant=tenant)
    assert account.business_name == "Acme Books" and account.status == ConnectionStatus.CONNECTED
    site = JiraSite.objects.get(tenant=tenant)
    assert site.auth_method == JiraSite.AuthMethod.OAUTH2 and site.cloud_id == CLOUD_ID and site.access_token
