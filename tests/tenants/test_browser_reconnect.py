"""Browser tests (system Chromium through Playwright) of connecting again (issue 23 point 4): a FreshBooks
business bound to another tenant is disconnected there and connected here; the sign-in page reached again with
the browser's Back button says the connection is fine when it is."""

import pytest
from playwright.sync_api import expect

from connector.sandbox.freshbooks import ACCOUNT_ID, BUSINESS_ID
from tenants.models import ConnectionStatus, FreshBooksAccount, FreshBooksWebhook, Tenant
from tests.tenants import test_browser_connect

pytestmark = pytest.mark.browser
vendors = test_browser_connect.vendors  # the fake FreshBooks and Atlassian, settings pointing at them


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_user(
        "operator", password="operator-pass-123", is_staff=True, is_superuser=True
    )


def sign_in(page, live_server):
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "operator-pass-123")
    page.click("input[type=submit]")


def connect_freshbooks(page, live_server, tenant, fb):
    page.goto(f"{live_server.url}/admin/tenants/tenant/{tenant.pk}/change/")
    page.get_by_role("link", name="Connect FreshBooks").click()
    page.get_by_role("button", name="Continue to FreshBooks").click()
    page.wait_for_url(f"{fb.url}/oauth/authorize?*")
    page.get_by_role("button", name="Approve").click()


@pytest.mark.django_db(transaction=True)
def test_a_business_bound_to_another_tenant_is_disconnected_there(live_server, vendors, page, operator):
    fb, _atlassian = vendors
    acme = Tenant.objects.create(name="Acme Corp", slug="acme")
    beta = Tenant.objects.create(name="Beta Ltd", slug="beta")
    bound = FreshBooksAccount.objects.create(
        tenant=acme,
        account_id=ACCOUNT_ID,
        business_id=BUSINESS_ID,
        business_name="Acme Books",
        access_token="acme-access",
        refresh_token="acme-refresh",
        status=ConnectionStatus.CONNECTED,
    )
    FreshBooksWebhook.objects.create(
        account=bound, callback_id=4321, event="invoice.create", uri="https://x.test/"
    )
    sign_in(page, live_server)

    connect_freshbooks(page, live_server, beta, fb)
    expect(page.locator("#connect-error")).to_contain_text("already connected to tenant Acme Corp")
    page.get_by_role("link", name="Back to Beta Ltd").click()

    # "Disconnect it there": Acme's page offers it, asks, and does it.
    page.goto(f"{live_server.url}/admin/tenants/tenant/{acme.pk}/change/")
    page.click(f"#disconnect-freshbooks-{bound.pk}")
    expect(page.locator("#content-main")).to_contain_text("callback(s) are deleted at FreshBooks")
    page.click("#confirm-disconnect")
    expect(page.locator(".messagelist")).to_contain_text("Acme Books is disconnected from Acme Corp")
    expect(page.locator("#freshbooks-connection")).to_have_text("not connected")
    assert not FreshBooksAccount.objects.filter(tenant=acme).exists()
    assert not FreshBooksWebhook.objects.exists()

    connect_freshbooks(page, live_server, beta, fb)
    page.wait_for_url(f"{live_server.url}/admin/tenants/tenant/{beta.pk}/change/")
    expect(page.locator("#freshbooks-connection")).to_contain_text("Connected")
    assert FreshBooksAccount.objects.get().tenant == beta


@pytest.mark.django_db(transaction=True)
def test_the_sign_in_reached_again_with_back_says_the_connection_is_fine(
    live_server, vendors, page, operator
):
    fb, _atlassian = vendors
    acme = Tenant.objects.create(name="Acme Corp", slug="acme")
    sign_in(page, live_server)
    connect_freshbooks(page, live_server, acme, fb)
    page.wait_for_url(f"{live_server.url}/admin/tenants/tenant/{acme.pk}/change/")
    expect(page.locator("#freshbooks-connection")).to_contain_text("Connected")

    page.go_back()  # the vendor's sign-in page again; approving it sends the used state back
    page.wait_for_url(f"{fb.url}/oauth/authorize?*")
    page.get_by_role("button", name="Approve").click()
    page.wait_for_url(f"{live_server.url}/admin/tenants/tenant/{acme.pk}/change/")
    messages = page.locator(".messagelist")
    expect(messages).to_contain_text(
        "already completed: FreshBooks business Acme Books is connected to Acme Corp"
    )
    expect(messages).not_to_contain_text("not connected")
    expect(page.locator("#freshbooks-connection")).to_contain_text("Connected")
