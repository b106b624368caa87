"""Browser tests (system Chromium through Playwright) of what a new operator meets: the getting-started panel
and the Connect buttons disabled with their reason, the API-token Jira site form, and an event's page after its
issue was rolled back."""

import pytest
from playwright.sync_api import expect

from audit.models import Event
from connector.defaults import create_default_mappings
from connector.models import Link
from connector.schedules import ROLLBACK
from tenants.models import ConnectionStatus, JiraSite, Tenant
from tests.processing import issues, process, run_queued

pytestmark = pytest.mark.browser


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


@pytest.mark.django_db(transaction=True)
def test_setup_panel_and_connect_buttons_say_what_is_missing(live_server, page, operator, settings):
    settings.SANDBOX = settings.ALLOW_LOCAL_VENDOR_URLS = False  # as in production
    settings.FRESHBOOKS_CLIENT_ID = ""
    settings.PUBLIC_BASE_URL = live_server.url  # http: Atlassian would not send the sign-in back
    tenant = Tenant.objects.create(name="Acme Corp", slug="acme")
    create_default_mappings(tenant, "FIN")

    sign_in(page, live_server)
    panel = page.locator("#getting-started")
    expect(panel.locator(".setup-blocker").first).to_contain_text(
        "Connect FreshBooks needs FRESHBOOKS_CLIENT_ID"
    )
    row = panel.locator(".tenant-status")
    expect(row).to_contain_text("Acme Corp")
    expect(row.locator(".next-step")).to_have_text("Connect FreshBooks.")
    expect(row).to_contain_text("FreshBooks: none registered")
    expect(row).to_contain_text("none yet")
    expect(row.locator("td").nth(3)).to_have_text("6")  # the default mappings
    # The connector's sections come before the framework's and the task queue's.
    sections = [s.strip().lower() for s in page.locator("#content-main .module caption").all_inner_texts()]
    assert sections == [
        "tenants and connections", "sync: mappings, rules and links", "audit trail",
        "authentication and authorization", "task queue",
    ], sections  # fmt: skip

    row.get_by_role("link", name="Acme Corp").click()
    freshbooks, jira = page.locator("#connect-freshbooks"), page.locator("#connect-jira")
    expect(freshbooks).to_have_attribute("aria-disabled", "true")
    expect(freshbooks).to_have_attribute("title", lambda_contains("FRESHBOOKS_CLIENT_ID"))
    assert freshbooks.get_attribute("href") is None
    expect(jira).to_have_attribute("title", lambda_contains(f"PUBLIC_BASE_URL is {live_server.url}"))
    expect(page.locator("#getting-started .next-step")).to_have_text("Connect FreshBooks.")

    # Reaching the connect address anyway ends on a page that says what to set, never an error 500.
    response = page.goto(f"{live_server.url}/oauth/jira/connect/acme/")
    assert response.status == 400
    expect(page.locator("#connect-error")).to_contain_text(
        "Set PUBLIC_BASE_URL to this connector's public https URL"
    )


def lambda_contains(text):
    import re

    return re.compile(".*" + re.escape(text) + ".*", re.S)


@pytest.mark.django_db(transaction=True)
def test_jira_site_form_keeps_the_token_explains_and_saves_without_checking(live_server, page, operator):
    Tenant.objects.create(name="Acme Corp", slug="acme")
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/admin/tenants/jirasite/add/")
    # Only what an API-token site needs is asked.
    for hidden in (
        "#id_access_token",
        "#id_refresh_token",
        "#id_cloud_id",
        "#id_webhook_secret",
        "#id_status",
    ):
        expect(page.locator(hidden)).to_have_count(0)
    page.select_option("#id_tenant", label="Acme Corp")
    page.fill("#id_base_url", "https://acme.invalid")
    page.fill("#id_email", "ops@acme.test")
    page.fill("#id_api_token", "typed-api-token")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.locator(".errornote, .errorlist").last).to_contain_text(
        "acme.invalid could not be reached: the name does not resolve."
    )
    expect(page.locator("#id_api_token")).to_have_value("typed-api-token")
    assert not JiraSite.objects.exists()

    page.click("#save-without-checking")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    site = JiraSite.objects.get()
    assert site.base_url == "https://acme.invalid" and site.api_token == "typed-api-token"
    assert site.status == ConnectionStatus.DISCONNECTED and "Saved without checking" in site.last_error


@pytest.mark.django_db(transaction=True)
def test_jira_site_form_sends_oauth_to_connect_jira(live_server, page, operator, atl, settings):
    settings.PUBLIC_BASE_URL = live_server.url
    settings.SANDBOX = True  # loopback fakes over http: no https requirement, as in the sandbox
    Tenant.objects.create(name="Acme Corp", slug="acme")
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/admin/tenants/jirasite/add/")
    page.select_option("#id_tenant", label="Acme Corp")
    page.select_option("#id_auth_method", value="oauth2")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_role("button", name="Continue to Jira").click()
    page.wait_for_url(f"{atl.url}/authorize?*")
    assert not JiraSite.objects.exists(), "nothing is saved before the sign-in"


@pytest.mark.django_db(transaction=True)
def test_event_page_after_rollback(live_server, page, operator, connected, fb, jira):
    invoice = process(connected, "invoice.create", 987654)
    key = invoice.jira_key
    update = Event.objects.create(
        tenant=connected, name="invoice.update", object_id="987654", status=Event.Status.SUCCEEDED, jira_key=key,
        payload={"name": "invoice.update", "object_id": "987654"},
    )  # fmt: skip

    sign_in(page, live_server)
    page.goto(f"{live_server.url}/admin/audit/event/{invoice.pk}/change/")
    expect(page.get_by_role("link", name=key)).to_have_attribute("href", f"{jira.url}/browse/{key}")
    collapsed = page.locator("details").filter(has_text="Payload and fetched record")
    expect(collapsed).to_have_count(1)
    assert collapsed.get_attribute("open") is None, "payload and record are collapsed by default"
    expect(page.locator("body")).to_contain_text("A FreshBooks webhook delivery")
    expect(page.locator("body")).to_contain_text("Processing runs")

    # One request at a time: the live server's threads share the in-memory SQLite connection.
    page.wait_for_load_state("networkidle")
    page.click("#rollback-event")
    page.wait_for_load_state("networkidle")
    page.get_by_role("button", name="Yes, roll back").click()
    expect(page.locator(".messagelist")).to_contain_text("Rollback of 1 event queued")
    page.wait_for_load_state("networkidle")
    assert run_queued(ROLLBACK) == [
        f"Rolled back by admin:{operator.username}: deleted issue {key}."
    ]  # the worker
    assert issues(jira) == [] and Link.objects.get(event=invoice).state == Link.State.ROLLED_BACK
    page.reload()
    content = page.locator("#content-main")
    expect(content).to_contain_text("Rolled back")
    expect(content).to_contain_text(f"{key} (rolled back)")
    expect(page.get_by_role("link", name=key)).to_have_count(0)

    # Another event about the same issue no longer reads "Succeeded – FIN-1".
    page.goto(f"{live_server.url}/admin/audit/event/{update.pk}/change/")
    expect(page.locator("#content-main")).to_contain_text("Succeeded, but its issue was rolled back since")
    page.goto(f"{live_server.url}/admin/audit/event/")
    expect(page.locator("#result_list tr:has-text('invoice.update')")).to_contain_text(f"{key} (rolled back)")
