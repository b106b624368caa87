"""Acceptance: an operator previews a mapping and replays a failed event from the admin in a real browser
(the system Chromium, headless, driven by Playwright). Replay from the admin only queues the event for the
worker, so no vendor fake is needed: nothing here calls FreshBooks or Jira."""

import pytest
from django_q.models import OrmQ
from playwright.sync_api import expect

from audit.models import Event
from connector.defaults import create_default_mappings
from connector.models import IssueMapping
from tenants.models import Tenant

pytestmark = pytest.mark.browser


@pytest.mark.django_db(transaction=True)
def test_operator_previews_a_mapping_and_replays_a_failed_event(live_server, page, django_user_model):
    django_user_model.objects.create_user(
        "operator", password="operator-pass-123", is_staff=True, is_superuser=True
    )
    tenant = Tenant.objects.create(name="Acme Corp", slug="acme")
    create_default_mappings(tenant, "FIN")
    mapping = IssueMapping.objects.get(tenant=tenant, event="invoice.create")
    failed = Event.objects.create(
        tenant=tenant, name="invoice.create", object_id="987654", account_id="ACM123",
        payload={"name": "invoice.create", "object_id": "987654"}, status=Event.Status.FAILED,
        status_detail="Jira rejected the issue (400): issuetype: Specify a valid issue type", attempts=1,
    )  # fmt: skip
    done = Event.objects.create(
        tenant=tenant,
        name="expense.create",
        object_id="23456",
        status=Event.Status.SUCCEEDED,
        jira_key="FIN-7",
    )
    queued_before = OrmQ.objects.count()

    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "operator-pass-123")
    page.click("input[type=submit]")

    # The mapping, then its Preview: the rendered summary and the exact Jira request body.
    page.get_by_role("link", name="Issue mappings").first.click()
    page.get_by_role("link", name="Invoice created").click()
    page.wait_for_url(f"{live_server.url}/admin/connector/issuemapping/{mapping.pk}/change/")
    assert page.locator("#context-invoice").get_attribute("open") is not None  # this mapping's keys shown
    page.get_by_role("link", name="Preview").click()
    page.wait_for_url(f"{live_server.url}/admin/connector/issuemapping/{mapping.pk}/preview/")
    summary = "Invoice ACM0002 for Gordon Shumway: 41.94 CAD"  # the shipped sample invoice
    assert page.inner_text("#rendered-summary") == summary
    body = page.inner_text("#jira-request-body")
    assert f'"summary": "{summary}"' in body
    assert '"key": "FIN"' in body and '"mlc-acme-invoice-987654"' in body and '"type": "doc"' in body

    # The Event list shows why the event failed; replay it with the admin action.
    page.get_by_role("link", name="Events").first.click()
    page.get_by_role("link", name="Failed", exact=True).click()  # the status filter
    page.wait_for_url("**/admin/audit/event/?status__exact=failed")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Specify a valid issue type")
    page.check(f"input[name=_selected_action][value='{failed.pk}']")
    page.select_option("select[name=action]", "replay_selected")
    page.click("button[name=index]")
    expect(page.locator(".messagelist")).to_contain_text(f"Queued 1 event(s) for replay: #{failed.pk}.")

    failed.refresh_from_db()
    done.refresh_from_db()
    assert failed.status == Event.Status.QUEUED
    assert failed.status_detail == "Replay requested by admin:operator (was failed)."
    assert done.status == Event.Status.SUCCEEDED  # not selected, not touched
    assert OrmQ.objects.count() == queued_before + 1

    # One event can be replayed from its own page too, and the operator stays on that page.
    page.goto(f"{live_server.url}/admin/audit/event/{done.pk}/change/")
    page.click("#replay-event")
    page.wait_for_url(f"{live_server.url}/admin/audit/event/{done.pk}/change/")
    expect(page.locator(".messagelist")).to_contain_text(f"Queued 1 event(s) for replay: #{done.pk}.")
    done.refresh_from_db()
    assert done.status == Event.Status.QUEUED and OrmQ.objects.count() == queued_before + 2

    # A malformed mapping id in the preview URL is a 404 page, not a server error.
    response = page.goto(f"{live_server.url}/admin/connector/issuemapping/not-a-number/preview/")
    assert response.status == 404
