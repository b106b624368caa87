"""Connecting FreshBooks and Jira through the OAuth views: happy paths, every failure path leaving nothing
half-saved, choice pages, staff-only access, and the admin pieces (tenant page, add tenant, API-token site)."""

import json
import logging
import re
import threading
import time
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.messages import get_messages
from django.db import connection, connections, transaction
from django.urls import reverse

from connector.jira.client import JiraClient
from connector.models import IssueMapping
from connector.sandbox.atlassian import CLOUD_ID, site
from connector.sandbox.jira import FakeJira, install_core_routes
from tenants import tokens, views
from tenants.models import ConnectionStatus, FreshBooksAccount, JiraSite, Tenant

pytestmark = pytest.mark.django_db

TWO_BUSINESSES = [
    {"account_id": "ABC123", "business_id": "439000", "name": "Commonwealth Systems"},
    {"account_id": "ABC124", "business_id": "438000", "name": "Bayern Corporation"},
]


def start(client, vendor, slug="acme"):
    """GET connect/ (the confirmation page), then its POST: returns the vendor's authorize URL."""
    page = client.get(f"/oauth/{vendor}/connect/{slug}/")
    assert page.status_code == 200 and 'method="post"' in page.content.decode(), page
    response = client.post(f"/oauth/{vendor}/connect/{slug}/")
    assert response.status_code == 302, response
    return response["Location"]


def vendor_page_link(authorize_url, button):
    """Load the fake vendor's authorize page like a browser and follow its Approve / Deny link target."""
    page = requests.get(authorize_url, timeout=5)
    assert page.status_code == 200, page.text
    href = unescape(re.search(rf'id="{button}"[^>]* data-href="([^"]+)"', page.text).group(1))
    parts = urlsplit(href)
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def token_requests(server, path):
    return server.calls("POST", path)


# --- FreshBooks ------------------------------------------------------------------------------------------------


def test_freshbooks_connect_attaches_the_business(staff_client, tenant, fb_auth, settings):
    authorize_url = start(staff_client, "freshbooks")
    query = parse_qs(urlsplit(authorize_url).query)
    assert authorize_url.startswith(fb_auth.url + "/oauth/authorize?")
    assert query["redirect_uri"] == [settings.PUBLIC_BASE_URL + "/oauth/freshbooks/callback/"]
    assert {"user:profile:read", "user:invoices:read", "user:time_entries:read"} <= set(
        query["scope"][0].split()
    )
    assert not any(s.endswith(":write") for s in query["scope"][0].split())

    path, params = vendor_page_link(authorize_url, "approve")
    assert path == "/oauth/freshbooks/callback/"
    response = staff_client.get(path, params)

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:tenants_tenant_change", args=[tenant.pk])
    account = FreshBooksAccount.objects.get(tenant=tenant)
    assert (account.account_id, account.business_id, account.business_name) == ("6BApk", "6543", "Acme Books")
    assert account.status == ConnectionStatus.CONNECTED
    assert account.access_token in fb_auth.state["access_tokens"] and account.refresh_token.startswith(
        "fb-refresh-"
    )
    assert account.token_expires_at is not None and account.identity_id == "12345"
    assert any("Acme Books is connected" in m for m in messages_of(response))
    page = staff_client.get(response["Location"]).content.decode()
    assert "Acme Books" in page and "Connect FreshBooks" in page


def test_freshbooks_bad_state_is_refused_and_nothing_saved(staff_client, tenant, fb_auth):
    path, params = vendor_page_link(start(staff_client, "freshbooks"), "approve")
    response = staff_client.get(path, {**params, "state": params["state"][:-2] + "xx"})
    assert response.status_code == 403
    assert "does not match this session" in response.content.decode()
    assert any("FreshBooks was not connected" in m for m in messages_of(response))
    assert not FreshBooksAccount.objects.exists()
    assert not token_requests(fb_auth, "/auth/oauth/token"), "the code must not be exchanged on a bad state"


def test_freshbooks_callback_without_a_started_flow_is_refused(staff_client, tenant, fb_auth):
    response = staff_client.get("/oauth/freshbooks/callback/", {"code": "fb-code-x", "state": "guess"})
    assert response.status_code == 403
    assert not FreshBooksAccount.objects.exists()


def test_freshbooks_replayed_state_is_refused(staff_client, tenant, fb_auth):
    path, params = vendor_page_link(start(staff_client, "freshbooks"), "approve")
    assert staff_client.get(path, params).status_code == 302
    FreshBooksAccount.objects.all().delete()

    replay = staff_client.get(path, params)
    assert replay.status_code == 403
    assert "already used" in replay.content.decode()
    assert not FreshBooksAccount.objects.exists()
    assert len(token_requests(fb_auth, "/auth/oauth/token")) == 1


def test_freshbooks_state_expires_after_ten_minutes(staff_client, tenant, fb_auth, monkeypatch):
    path, params = vendor_page_link(start(staff_client, "freshbooks"), "approve")
    now = views.time.time()
    monkeypatch.setattr(views.time, "time", lambda: now + 601)
    response = staff_client.get(path, params)
    assert response.status_code == 403
    assert "10 minutes" in response.content.decode()
    assert not FreshBooksAccount.objects.exists()


def test_state_is_bound_to_the_session(client, staff_user, django_user_model, tenant, fb_auth):
    client.force_login(staff_user)
    path, params = vendor_page_link(start(client, "freshbooks"), "approve")
    other = django_user_model.objects.create_user("other", password="x-pass-123", is_staff=True)
    client.force_login(other)  # a new session: the first one's state is not there
    assert client.get(path, params).status_code == 403
    assert not FreshBooksAccount.objects.exists()


def test_freshbooks_denied_consent(staff_client, tenant, fb_auth):
    path, params = vendor_page_link(start(staff_client, "freshbooks"), "deny")
    response = staff_client.get(path, params)
    assert response.status_code == 400
    assert "Access was not granted on FreshBooks" in response.content.decode()
    assert any("was not connected" in m for m in messages_of(response))
    assert not FreshBooksAccount.objects.exists()
    assert not token_requests(fb_auth, "/auth/oauth/token")


def test_freshbooks_token_exchange_error(staff_client, tenant, fb_auth):
    fb_auth.state["token_error"] = (400, {"error": "invalid_grant", "error_description": "Code expired"})
    path, params = vendor_page_link(start(staff_client, "freshbooks"), "approve")
    response = staff_client.get(path, params)
    assert response.status_code == 502
    body = response.content.decode()
    # The OAuth error code, never the vendor's free text (a connection error never echoes a remote body).
    assert "token exchange failed (invalid_grant)" in body and "Code expired" not in body
    assert not FreshBooksAccount.objects.exists()
    assert not fb_auth.calls("GET", "/auth/api/v1/users/me")


def test_freshbooks_several_businesses_choice_page(staff_client, tenant, fb_auth):
    fb_auth.state["memberships"] = TWO_BUSINESSES
    path, params = vendor_page_link(start(staff_client, "freshbooks"), "approve")
    page = staff_client.get(path, params)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Commonwealth Systems" in html and "Bayern Corporation" in html
    assert not FreshBooksAccount.objects.exists(), "nothing is saved before the choice"
    issued = {t for t in fb_auth.state["access_tokens"] if t.startswith("fb-access-")}
    session_dump = json.dumps(dict(staff_client.session.items()))
    assert issued and not any(t in session_dump for t in issued), "the pending token is stored encrypted"

    response = staff_client.post("/oauth/freshbooks/choose/", {"choice": "438000"})
    assert response.status_code == 302
    account = FreshBooksAccount.objects.get(tenant=tenant)
    assert (account.account_id, account.business_id, account.business_name) == (
        "ABC124",
        "438000",
        "Bayern Corporation",
    )
    assert account.access_token in issued

    again = staff_client.post("/oauth/freshbooks/choose/", {"choice": "439000"})
    assert again.status_code == 403
    assert FreshBooksAccount.objects.count() == 1


def test_freshbooks_choice_must_be_one_offered_and_expires(staff_client, tenant, fb_auth, monkeypatch):
    fb_auth.state["memberships"] = TWO_BUSINESSES
    path, params = vendor_page_link(start(staff_client, "freshbooks"), "approve")
    staff_client.get(path, params)
    assert staff_client.post("/oauth/freshbooks/choose/", {"choice": "999"}).status_code == 400
    assert not FreshBooksAccount.objects.exists()

    path, params = vendor_page_link(start(staff_client, "freshbooks"), "approve")
    staff_client.get(path, params)
    monkeypatch.setattr(views, "STATE_TTL", -1)  # the sealed token is older than its lifetime
    response = staff_client.post("/oauth/freshbooks/choose/", {"choice": "438000"})
    assert response.status_code == 400 and "10 minutes" in response.content.decode()
    assert not FreshBooksAccount.objects.exists()


def test_freshbooks_business_of_another_tenant_is_not_taken_over(staff_client, tenant, fb_auth):
    other = Tenant.objects.create(name="Other", slug="other")
    FreshBooksAccount.objects.create(
        tenant=other, account_id="6BApk", business_id="6543", access_token="keep"
    )
    path, params = vendor_page_link(start(staff_client, "freshbooks"), "approve")
    response = staff_client.get(path, params)
    assert response.status_code == 409
    assert "already connected to tenant Other" in response.content.decode()
    account = FreshBooksAccount.objects.get()
    assert account.tenant == other and account.access_token == "keep"


def test_a_tenant_syncs_one_business_a_second_one_is_refused(staff_client, tenant, fb_auth):
    """Ledger keys are per tenant: a second business on the same tenant would collide on equal object ids."""
    FreshBooksAccount.objects.create(
        tenant=tenant, account_id="OTHER1", business_id="1", business_name="Old Books", access_token="keep"
    )
    path, params = vendor_page_link(start(staff_client, "freshbooks"), "approve")
    response = staff_client.get(path, params)
    assert response.status_code == 409
    assert "already syncs the FreshBooks business Old Books" in unescape(response.content.decode())
    account = FreshBooksAccount.objects.get()
    assert (account.account_id, account.access_token) == ("OTHER1", "keep")


def test_reconnect_updates_the_same_account(staff_client, tenant, fb_auth):
    FreshBooksAccount.objects.create(
        tenant=tenant, account_id="6BApk", business_id="6543", access_token="old",
        status=ConnectionStatus.NEEDS_RECONNECT, last_error="refused",
    )  # fmt: skip
    path, params = vendor_page_link(start(staff_client, "freshbooks"), "approve")
    assert staff_client.get(path, params).status_code == 302
    account = FreshBooksAccount.objects.get()
    assert account.status == ConnectionStatus.CONNECTED and account.last_error == ""
    assert account.access_token != "old"


@pytest.mark.parametrize("vendor", ["freshbooks", "jira"])
def test_non_staff_users_are_blocked(client, django_user_model, tenant, fb_auth, atl, vendor):
    for logged_in in (False, True):
        if logged_in:
            user = django_user_model.objects.create_user("customer", password="cust-pass-123", is_staff=False)
            client.force_login(user)
        response = client.get(f"/oauth/{vendor}/connect/acme/")
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
        assert not any(k.startswith("oauth_") for k, _v in client.session.items())
        callback = client.get(f"/oauth/{vendor}/callback/", {"code": "c", "state": "s"})
        assert callback.status_code == 302 and callback["Location"].startswith("/admin/login/")
        choose = client.post(f"/oauth/{vendor}/choose/", {"choice": "x"})
        assert choose.status_code == 302 and choose["Location"].startswith("/admin/login/")
    assert not token_requests(fb_auth, "/auth/oauth/token") and not token_requests(atl, "/oauth/token")
    assert not FreshBooksAccount.objects.exists() and not JiraSite.objects.exists()


def test_unknown_tenant_is_404(staff_client, db):
    assert staff_client.get("/oauth/freshbooks/connect/nobody/").status_code == 404


# --- Jira OAuth 2.0 (3LO) --------------------------------------------------------------------------------------


def test_jira_connect_saves_an_oauth_site(staff_client, tenant, atl, settings):
    authorize_url = start(staff_client, "jira")
    query = parse_qs(urlsplit(authorize_url).query)
    assert authorize_url.startswith(atl.url + "/authorize?")
    assert query["audience"] == ["api.atlassian.com"] and query["prompt"] == ["consent"]
    assert {"offline_access", "read:jira-work", "write:jira-work", "manage:jira-webhook"} <= set(
        query["scope"][0].split()
    )
    assert query["redirect_uri"] == [settings.PUBLIC_BASE_URL + "/oauth/jira/callback/"]

    response = staff_client.get(*vendor_page_link(authorize_url, "approve"))
    assert response.status_code == 302
    site = JiraSite.objects.get(tenant=tenant)
    assert site.auth_method == JiraSite.AuthMethod.OAUTH2 and site.deployment == JiraSite.Deployment.CLOUD
    assert (site.cloud_id, site.base_url, site.site_name) == (CLOUD_ID, "https://acme.atlassian.net", "acme")
    assert site.status == ConnectionStatus.CONNECTED and site.refresh_token.startswith("atl-refresh-")
    assert "offline_access" in site.scopes
    # API calls go through the gateway: {ATLASSIAN_API_URL}/ex/jira/{cloudId}/rest/api/3/...
    assert JiraClient(site).myself()["displayName"] == "Ops Bot"
    assert (
        atl.jira.calls("GET", "/rest/api/3/myself")[0].headers["authorization"]
        == f"Bearer {site.access_token}"
    )
    assert any("Jira site acme is connected" in m for m in messages_of(response))


def test_jira_several_sites_choice_page(staff_client, tenant, atl):
    atl.state["sites"] = [site(), site(cloud_id="99999999-0000-0000-0000-000000000000", name="beta",
                                      url="https://beta.atlassian.net")]  # fmt: skip
    page = staff_client.get(*vendor_page_link(start(staff_client, "jira"), "approve"))
    assert page.status_code == 200 and "beta.atlassian.net" in page.content.decode()
    assert not JiraSite.objects.exists()
    response = staff_client.post("/oauth/jira/choose/", {"choice": "99999999-0000-0000-0000-000000000000"})
    assert response.status_code == 302
    saved = JiraSite.objects.get(tenant=tenant)
    assert (saved.site_name, saved.base_url) == ("beta", "https://beta.atlassian.net")


def test_jira_denied_consent_and_exchange_error_save_nothing(staff_client, tenant, atl):
    denied = staff_client.get(*vendor_page_link(start(staff_client, "jira"), "deny"))
    assert denied.status_code == 400 and "Access was not granted on Jira" in denied.content.decode()

    atl.state["token_error"] = (
        403,
        {"error": "invalid_grant", "error_description": "Invalid authorization code"},
    )
    failed = staff_client.get(*vendor_page_link(start(staff_client, "jira"), "approve"))
    assert failed.status_code == 502 and "(invalid_grant)" in failed.content.decode()
    assert "Invalid authorization code" not in failed.content.decode()
    assert not JiraSite.objects.exists()


def test_jira_bad_state_and_no_site(staff_client, tenant, atl):
    path, params = vendor_page_link(start(staff_client, "jira"), "approve")
    assert staff_client.get(path, {**params, "state": "forged"}).status_code == 403
    atl.state["sites"] = []
    response = staff_client.get(*vendor_page_link(start(staff_client, "jira"), "approve"))
    assert response.status_code == 400 and "no Jira site" in response.content.decode()
    assert not JiraSite.objects.exists()


# --- admin -----------------------------------------------------------------------------------------------------


def test_tenant_page_shows_connect_buttons_and_connections(staff_client, tenant):
    FreshBooksAccount.objects.create(
        tenant=tenant, account_id="6BApk", business_id="6543", business_name="Acme Books",
        status=ConnectionStatus.CONNECTED,
    )  # fmt: skip
    JiraSite.objects.create(tenant=tenant, base_url="https://acme.atlassian.net", site_name="acme")
    page = staff_client.get(reverse("admin:tenants_tenant_change", args=[tenant.pk])).content.decode()
    assert 'href="/oauth/freshbooks/connect/acme/"' in page and "Connect FreshBooks" in page
    assert 'href="/oauth/jira/connect/acme/"' in page and "Connect Jira (OAuth)" in page
    assert "Acme Books" in page and "acme.atlassian.net" in page
    assert "Jira project key" not in page


def add_tenant_form(staff_client, **fields):
    """The admin add-tenant form with the inline formsets' management fields taken from the page."""
    page = staff_client.get(reverse("admin:tenants_tenant_add")).content.decode()
    hidden = re.findall(r'name="([\w-]+-(?:TOTAL|INITIAL|MIN_NUM|MAX_NUM)_FORMS)"[^>]*value="(\d*)"', page)
    return {**dict(hidden), "active": "on", "settings": "{}", **fields}


def test_admin_add_tenant_creates_default_mappings(staff_client, db):
    url = reverse("admin:tenants_tenant_add")
    assert "Jira project key" in staff_client.get(url).content.decode()
    form = add_tenant_form(staff_client, name="Globex", slug="globex")
    bad = staff_client.post(url, {**form, "jira_project_key": "1 bad"})
    assert bad.status_code == 200 and not Tenant.objects.exists()

    assert staff_client.post(url, {**form, "jira_project_key": "fin"}).status_code == 302
    tenant = Tenant.objects.get(slug="globex")
    mappings = IssueMapping.objects.filter(tenant=tenant)
    assert mappings.count() == 6 and {m.project_key for m in mappings} == {"FIN"}


def test_admin_add_tenant_without_key_creates_no_mappings(staff_client, db):
    form = add_tenant_form(staff_client, name="Initech", slug="initech")
    assert staff_client.post(reverse("admin:tenants_tenant_add"), form).status_code == 302
    assert not IssueMapping.objects.exists()


def jira_site_form(tenant, jira, **extra):
    return {
        "tenant": tenant.pk, "base_url": jira.url, "site_name": "", "cloud_id": "", "deployment": "cloud",
        "auth_method": "basic", "email": "ops@acme.test", "api_token": "jira-api-token", "status": "disconnected",
        "last_error": "", "scopes": "", "webhook_ids": "[]", **extra,
    }  # fmt: skip


@pytest.mark.parametrize("deployment", ["cloud", "server"])
def test_admin_api_token_site_detects_deployment(staff_client, tenant, deployment):
    jira = install_core_routes(FakeJira(deployment=deployment))
    try:
        # The form is submitted with the opposite deployment: serverInfo decides.
        wrong = "server" if deployment == "cloud" else "cloud"
        response = staff_client.post(
            reverse("admin:tenants_jirasite_add"), jira_site_form(tenant, jira, deployment=wrong)
        )
        assert response.status_code == 302, response.content.decode()[:3000]
        saved = JiraSite.objects.get(tenant=tenant)
        assert saved.deployment == deployment and saved.status == ConnectionStatus.CONNECTED
        assert saved.api_token == "jira-api-token"
    finally:
        jira.close()
    assert not jira.spec_errors


def test_admin_api_token_site_with_wrong_token_is_not_saved(staff_client, tenant, fake_jira):
    response = staff_client.post(
        reverse("admin:tenants_jirasite_add"), jira_site_form(tenant, fake_jira, api_token="wrong")
    )
    assert response.status_code == 200
    assert "refused the credentials" in response.content.decode()
    assert 'value="wrong"' in response.content.decode(), "the typed token is kept for another try"
    assert not JiraSite.objects.exists()


def test_flows_started_in_two_tabs_each_complete_once(staff_client, tenant, atl):
    other = Tenant.objects.create(name="Other", slug="other")
    first = vendor_page_link(start(staff_client, "jira", "acme"), "approve")
    second = vendor_page_link(start(staff_client, "jira", "other"), "approve")
    assert staff_client.get(*second).status_code == 302
    assert staff_client.get(*first).status_code == 302
    assert JiraSite.objects.filter(tenant__in=[tenant, other]).count() == 2
    exchanged = len(token_requests(atl, "/oauth/token"))
    again = staff_client.get(*first)  # each state is single use: the browser's Back button brings it again
    assert again.status_code == 302 and len(token_requests(atl, "/oauth/token")) == exchanged
    assert "already completed" in [str(m) for m in again.wsgi_request._messages][-1]


def test_admin_site_url_change_is_checked_again(staff_client, tenant, fake_jira):
    site = JiraSite.objects.create(
        tenant=tenant, base_url=fake_jira.url, email="ops@acme.test", api_token="jira-api-token",
        deployment="cloud", status=ConnectionStatus.CONNECTED,
    )  # fmt: skip
    url = reverse("admin:tenants_jirasite_change", args=[site.pk])
    moved = staff_client.post(
        url, jira_site_form(tenant, fake_jira, base_url="http://127.0.0.1:9", api_token="jira-api-token")
    )
    assert moved.status_code == 200
    assert "127.0.0.1 could not be reached: nothing accepts connections there" in moved.content.decode()
    site.refresh_from_db()
    assert site.base_url == fake_jira.url
    # Unchanged URL and email: saved without contacting Jira again (the stored token is kept).
    before = len(fake_jira.calls())
    assert staff_client.post(url, jira_site_form(tenant, fake_jira, api_token="")).status_code == 302
    assert len(fake_jira.calls()) == before
    site.refresh_from_db()
    assert site.email == "ops@acme.test" and site.api_token == "jira-api-token"


@pytest.mark.parametrize("me", [[], {"response": ["not", "a", "user"]}, {"response": {"business_memberships": [
    "x", {"business": "y"}, {"business": {"id": 1}}]}}])  # fmt: skip
def test_freshbooks_odd_users_me_is_a_clear_failure(staff_client, tenant, fb_auth, me):
    fb_auth.route("GET", "/auth/api/v1/users/me", first=True)(lambda request: me)
    response = staff_client.get(*vendor_page_link(start(staff_client, "freshbooks"), "approve"))
    assert response.status_code in (400, 502)
    assert "FreshBooks was not connected" in " ".join(messages_of(response))
    assert not FreshBooksAccount.objects.exists()


def test_jira_odd_accessible_resources_are_skipped(staff_client, tenant, atl):
    atl.state["sites"] = ["x", {"id": "c1", "url": 5}, {"id": "c2", "url": "https://b.atlassian.net", "scopes": "x"},
                         site()]  # fmt: skip
    response = staff_client.get(*vendor_page_link(start(staff_client, "jira"), "approve"))
    assert response.status_code == 200, "two usable sites: the choice page"
    assert "b.atlassian.net" in response.content.decode() and not JiraSite.objects.exists()


def test_debug_logging_never_shows_oauth_secrets(staff_client, tenant, fb_auth, caplog):
    with caplog.at_level(logging.DEBUG):
        assert (
            staff_client.get(*vendor_page_link(start(staff_client, "freshbooks"), "approve")).status_code
            == 302
        )
        account = FreshBooksAccount.objects.get()
        account.token_expires_at = None
        tokens.access_token(account)  # a refresh
    assert any(r.levelno == logging.DEBUG for r in caplog.records), "debug logging was on"
    old = fb_auth.calls("POST", "/auth/oauth/token")[0].form()
    for secret in (account.access_token, account.refresh_token, old["code"], old["client_secret"]):
        assert secret not in caplog.text


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row and index locks")
@pytest.mark.django_db(transaction=True)
def test_business_saved_by_another_sign_in_at_the_same_moment_is_a_409(staff_client, tenant, fb_auth):
    """The rival's insert is not committed yet when ours starts; ours waits on the unique index, then loses."""
    path, params = vendor_page_link(start(staff_client, "freshbooks"), "approve")
    inserted = threading.Event()

    def rival():
        try:
            with transaction.atomic():
                FreshBooksAccount.objects.create(
                    tenant=tenant, account_id="6BApk", business_id="6543", access_token="rival"
                )
                inserted.set()
                with connection.cursor() as cursor:
                    for _ in range(200):  # commit once our insert waits for this transaction
                        cursor.execute(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                            "AND datname = current_database()"
                        )
                        if cursor.fetchone()[0]:
                            break
                        time.sleep(0.05)
        finally:
            connections.close_all()

    thread = threading.Thread(target=rival)
    thread.start()
    assert inserted.wait(10)
    response = staff_client.get(path, params)
    thread.join(15)
    assert response.status_code == 409 and "at the same moment" in response.content.decode()
    assert FreshBooksAccount.objects.get().access_token == "rival"
