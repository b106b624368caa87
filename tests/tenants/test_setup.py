"""Setup status instead of silent failure, and the small edges a new operator hits first."""

import pytest
from django.urls import reverse

from connector.defaults import create_default_mappings
from tenants.models import FreshBooksWebhook, JiraSite, Tenant
from tenants.setup import connect_blocker, tenant_status
from tests.processing import connected_account


@pytest.fixture
def production(settings):
    settings.SANDBOX = False
    settings.ALLOW_LOCAL_VENDOR_URLS = False
    settings.PUBLIC_BASE_URL = "https://connector.example.test"
    settings.FRESHBOOKS_AUTH_URL = "https://auth.freshbooks.com"
    settings.ATLASSIAN_AUTH_URL = "https://auth.atlassian.com"
    return settings


def test_connect_blockers_name_what_to_set(production):
    assert connect_blocker("freshbooks") == "" and connect_blocker("jira") == ""
    production.FRESHBOOKS_CLIENT_SECRET = ""
    assert connect_blocker("freshbooks").startswith(
        "Connect FreshBooks needs FRESHBOOKS_CLIENT_SECRET: create"
    )
    production.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    assert connect_blocker("jira").startswith("PUBLIC_BASE_URL is http://127.0.0.1:8000: Jira only sends")
    production.PUBLIC_BASE_URL = "https://connector.example.test"
    production.ATLASSIAN_AUTH_URL = "http://auth.example.test"
    assert connect_blocker("jira") == "ATLASSIAN_AUTH_URL is http://auth.example.test: it must be an https URL " \
        "(unset it to use Jira's own)."  # fmt: skip
    production.SANDBOX = True
    assert connect_blocker("jira") == "" and connect_blocker("freshbooks") == ""


@pytest.mark.django_db
@pytest.mark.parametrize("vendor", ["freshbooks", "jira"])
def test_misconfigured_connect_is_a_page_saying_what_to_set(staff_client, tenant, production, vendor):
    production.FRESHBOOKS_CLIENT_ID = production.ATLASSIAN_CLIENT_ID = ""
    response = staff_client.get(f"/oauth/{vendor}/connect/acme/")
    assert response.status_code == 400
    assert "_CLIENT_ID" in response.content.decode() and "Nothing was saved" in response.content.decode()


@pytest.mark.django_db
def test_http_authorize_url_is_a_clear_page_not_a_500(staff_client, tenant, production, monkeypatch):
    production.ALLOW_LOCAL_VENDOR_URLS = True  # passes the settings check; oauthlib still refuses http
    production.FRESHBOOKS_AUTH_URL = "http://auth.example.test"
    monkeypatch.delenv("OAUTHLIB_INSECURE_TRANSPORT", raising=False)
    response = staff_client.post("/oauth/freshbooks/connect/acme/")
    assert response.status_code == 400
    assert "The FreshBooks sign-in is misconfigured" in response.content.decode()


@pytest.mark.django_db
def test_tenant_next_steps(tenant, settings):
    create_default_mappings(tenant, "FIN")
    assert tenant_status(tenant)["step_code"] == "connect_freshbooks"
    account = connected_account(tenant)
    assert tenant_status(tenant)["step_code"] == "connect_jira"
    JiraSite.objects.create(
        tenant=tenant, base_url="https://acme.atlassian.net", email="a@b.c", api_token="t"
    )
    status = tenant_status(tenant)
    assert status["step_code"] == "register_webhooks" and status["mappings"] == 6
    hook = FreshBooksWebhook.objects.create(
        account=account, callback_id=1, event="invoice.create", uri="https://x/"
    )
    status = tenant_status(tenant)
    assert status["step_code"] == "verifying" and status["webhooks"].startswith("FreshBooks: 0 of 1 verified")
    hook.verified = True
    hook.save()
    assert tenant_status(tenant)["step_code"] == "running"
    tenant.active = False
    assert tenant_status(tenant)["step_code"] == "inactive"


@pytest.mark.django_db
def test_a_new_tenant_lands_on_its_page(staff_client):
    response = staff_client.post(
        reverse("admin:tenants_tenant_add"),
        {"name": "Acme Corp", "slug": "acme", "active": "on", "auto_retry": "on", "settings": "{}",
         "jira_project_key": "FIN", "freshbooks_accounts-TOTAL_FORMS": "0",
         "freshbooks_accounts-INITIAL_FORMS": "0"},
    )  # fmt: skip
    tenant = Tenant.objects.get(slug="acme")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:tenants_tenant_change", args=[tenant.pk])


@pytest.mark.django_db
def test_root_favicon_and_messages_as_written(client, staff_client, tenant):
    assert client.get("/")["Location"] == reverse("admin:index")
    assert client.get("/favicon.ico").status_code == 204
    JiraSite.objects.create(tenant=tenant, base_url="https://acme.invalid", email="a@b.c", api_token="t")
    page = staff_client.post(
        reverse("admin:tenants_tenant_register_webhooks", args=[tenant.pk]), follow=True
    ).content.decode()
    assert "https://acme.invalid: Jira webhooks not registered" in page, "not capitalised: Https://"
    assert "Https://" not in page


@pytest.mark.django_db
def test_index_panel_lists_tenants_needing_a_step_first_and_stays_short(staff_client):
    running = Tenant.objects.create(name="Aardvark Ltd", slug="aardvark")
    account = connected_account(running)
    JiraSite.objects.create(tenant=running, base_url="https://a.example.test", email="a@b.c", api_token="t")
    FreshBooksWebhook.objects.create(account=account, callback_id=1, event="invoice.create", uri="https://x/",
                                     verified=True)  # fmt: skip
    for n in range(21):
        Tenant.objects.create(name=f"Tenant {n:02d}", slug=f"t{n:02d}")
    page = staff_client.get("/admin/").content.decode()
    panel = page[page.index('id="getting-started"') :].split("</table>")[0]
    assert panel.count('class="tenant-status"') == 20
    assert "Tenant 00" in panel and "Aardvark Ltd" not in panel, "tenants with a next step come first"
    assert "… and 2 more" in page
