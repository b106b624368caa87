"""Acceptance: on a fresh database in sandbox mode, an operator signs in and — by clicking only — connects the
sandbox tenant through the OAuth pages, registers its webhooks, creates an invoice on the FreshBooks sandbox
page, then sees its issue on the Jira sandbox page and the succeeded event in the admin.

The sandbox is the product's (connector.sandbox.runtime.Sandbox, on free loopback ports); the worker is played
by this test, which runs the queued django-q tasks between clicks."""

import time

import pytest
from django.db import DatabaseError
from django.utils.module_loading import import_string
from django_q.models import OrmQ
from playwright.sync_api import expect

from audit.models import Event
from connector.sandbox.runtime import Sandbox
from connector.sandbox.tenant import setup_tenant
from tenants.models import FreshBooksWebhook

pytestmark = pytest.mark.browser


def run_worker_until(sandbox, done, timeout=30):
    """Run queued tasks (as a django-q worker would) until `done()` is true.

    The in-memory SQLite test database is one connection shared with the live server's threads: tasks run
    only while the sandbox sends nothing to the live server (its deliveries go out one at a time)."""
    deadline = time.monotonic() + timeout
    while True:
        assert time.monotonic() < deadline, "the sandbox flow did not finish in time"
        time.sleep(0.2)
        if not sandbox.idle():
            continue
        try:
            if done():
                return
            for item in OrmQ.objects.order_by("id"):
                task = item.task
                import_string(task["func"])(*task["args"], **task.get("kwargs", {}))
                item.delete()
        except DatabaseError:  # a moment the shared connection was busy: like a worker, try again
            pass


@pytest.fixture
def sandbox(settings, live_server, tmp_path):
    running = Sandbox(
        state_path=tmp_path / "sandbox.json", verify_delay=2
    )  # the Register request is over by then
    settings.SANDBOX = True
    settings.FRESHBOOKS_API_URL = settings.FRESHBOOKS_AUTH_URL = running.fb.url
    settings.ATLASSIAN_AUTH_URL, settings.ATLASSIAN_API_URL = running.auth.url, running.jira.url
    settings.PUBLIC_BASE_URL = live_server.url
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    yield running
    running.close()


@pytest.mark.django_db(transaction=True)
def test_sandbox_invoice_becomes_a_jira_issue_by_clicks_only(live_server, sandbox, page, django_user_model):
    django_user_model.objects.create_user(
        "operator", password="operator-pass-123", is_staff=True, is_superuser=True
    )
    tenant, _ = setup_tenant()  # what `manage.py sandbox` does at start

    page.goto(f"{live_server.url}/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "operator-pass-123")
    page.click("input[type=submit]")
    expect(page.locator("#sandbox-banner")).to_contain_text("Sandbox")
    expect(page.locator("#getting-started .tenant-status")).to_contain_text("Connect FreshBooks.")
    page.locator("#getting-started").get_by_role("link", name="Sandbox Bakery").click()

    # OAuth: the FreshBooks sandbox's consent page for its sample business, then Atlassian's.
    page.click("#connect-freshbooks")
    page.get_by_role("button", name="Continue to FreshBooks").click()  # the confirmation page POSTs
    expect(page.locator("h1")).to_contain_text("allow the connector to read Sandbox Bakery")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".messagelist")).to_contain_text("FreshBooks business Sandbox Bakery is connected")
    expect(page.locator("#getting-started .next-step")).to_contain_text("Connect Jira")
    page.click("#connect-jira")
    page.get_by_role("button", name="Continue to Jira").click()
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".messagelist")).to_contain_text("Jira site sandbox is connected")
    expect(page.locator("#getting-started .next-step")).to_contain_text("Register webhooks")

    # Webhooks: the FreshBooks sandbox sends callback.verify by itself; the worker confirms it.
    page.click("#register-webhooks")
    expect(page.locator(".messagelist")).to_contain_text("awaiting verification")
    expect(page.locator(".messagelist")).to_contain_text("Jira webhooks registered")
    hooks = FreshBooksWebhook.objects.filter(account__tenant=tenant)
    run_worker_until(sandbox, lambda: hooks.exists() and not hooks.filter(verified=False).exists())
    page.reload()
    expect(page.locator("#getting-started .next-step")).to_contain_text("Running")

    # An invoice, made on the FreshBooks sandbox page with its prefilled fields.
    page.locator("#sandbox-banner").get_by_role("link", name="FreshBooks sandbox").click()
    page.click("#create")
    expect(page.locator("#activity-table")).to_contain_text("invoice.create")
    run_worker_until(
        sandbox, lambda: Event.objects.filter(name="invoice.create", status=Event.Status.SUCCEEDED).exists()
    )
    event = Event.objects.get(name="invoice.create")
    page.reload()
    expect(page.locator("#activity-table")).to_contain_text("HTTP 200")

    # Its issue, as the team sees it in (the sandbox) Jira.
    page.goto(f"{live_server.url}/admin/")
    page.locator("#sandbox-banner").get_by_role("link", name="Jira sandbox").click()
    row = page.locator(f"#issue-{event.jira_key}")
    expect(row).to_contain_text(f"Invoice SBX-{event.object_id} for Gordon's Bakery: 120.00 USD")

    # And the succeeded event in the admin.
    page.goto(f"{live_server.url}/admin/")
    page.get_by_role("link", name="Events").first.click()
    expect(page.locator("#result_list")).to_contain_text(event.jira_key)
    expect(page.locator("#result_list")).to_contain_text("Succeeded")
