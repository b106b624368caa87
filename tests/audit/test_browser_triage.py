"""An operator on a bad day, in a real browser (system Chromium through Playwright, 1366 px wide): pauses a
tenant from its page, sees it on the health panel, resumes it; on the Failed events list picks the largest
reason, replays the whole group as one background task, resolves another group with a note and assigns a
failure to a colleague."""

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import expect

from audit.models import Event, ReplayBatch
from connector.schedules import REPLAY_BATCH
from tenants.models import Tenant
from tests.processing import run_queued

pytestmark = pytest.mark.browser
ISSUE_TYPE = "Jira POST /rest/api/3/issue → 400: issuetype: Specify a valid issue type"
GONE = "Jira PUT /rest/api/3/issue/FIN-{n} → 404: Issue does not exist"


def log_in(page, live_server, username):
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", f"{username}-pass-123")
    page.click("input[type=submit]")


@pytest.fixture
def people(django_user_model):
    otto = django_user_model.objects.create_user("otto", password="otto-pass-123", is_staff=True)
    codenames = ("view_event", "view_failedevent", "view_replaybatch", "replay_event", "triage_event")
    otto.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="audit", codename__in=codenames)
    )
    django_user_model.objects.create_user("ann", password="ann-pass-123", is_staff=True, is_superuser=True)
    return otto


@pytest.mark.django_db(transaction=True)
def test_operator_pauses_and_resumes_a_tenant(live_server, page, django_user_model):
    django_user_model.objects.create_user("ann", password="ann-pass-123", is_staff=True, is_superuser=True)
    acme = Tenant.objects.create(name="Acme Corp", slug="acme")
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, live_server, "ann")

    page.goto(f"{live_server.url}/admin/tenants/tenant/{acme.pk}/change/")
    expect(page.locator("#sync-status")).to_contain_text("Running")
    page.fill("#pause-note", "Jira migration this weekend")
    page.click("#pause-sync")
    expect(page.locator(".messagelist")).to_contain_text("Acme Corp: paused.")
    expect(page.locator("#sync-status")).to_contain_text("Jira migration this weekend")
    expect(page.locator("#sync-status")).to_contain_text("nothing is sent to Jira")

    page.goto(f"{live_server.url}/admin/")
    row = page.locator('#tenant-health tr[data-tenant="acme"]')
    expect(row.locator("td.sync")).to_contain_text("paused since")
    assert "attention" in row.get_attribute("class")

    page.goto(f"{live_server.url}/admin/tenants/tenant/{acme.pk}/change/")
    page.click("#resume-sync")
    expect(page.locator(".messagelist")).to_contain_text("Acme Corp: resumed; 0 held event(s) queued")
    expect(page.locator("#sync-status")).to_contain_text("Running")
    acme.refresh_from_db()
    assert not acme.paused


@pytest.mark.django_db(transaction=True)
def test_operator_triages_failures_by_reason(live_server, page, people):
    acme = Tenant.objects.create(name="Acme Corp", slug="acme")
    Event.objects.bulk_create(
        Event(tenant=acme, name="invoice.create", object_id=str(n), status="failed", status_detail=ISSUE_TYPE,
              failure_reason=ISSUE_TYPE)
        for n in range(1, 131)
    )  # fmt: skip
    for n in range(1, 4):
        event = Event(tenant=acme, name="bill.create", object_id=str(500 + n), status="failed",
                      status_detail=GONE.format(n=n))  # fmt: skip
        event.save()
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, live_server, "otto")

    page.goto(f"{live_server.url}/admin/audit/failedevent/")
    page.get_by_role("link", name=f"{ISSUE_TYPE} (130)").click()
    expect(page.locator("#result_list tbody tr")).to_have_count(100)  # a page of the group
    page.check("#action-toggle")
    page.click(".question a")  # "Select all 130 failed events"
    page.select_option("select[name=action]", "replay_selected")
    page.click("button[name=index]")
    expect(page.locator(".messagelist")).to_contain_text("Replaying 130 event(s) in the background")
    expect(page.locator("#replay-batches")).to_contain_text("0 of 130 (0 %)")
    assert Event.objects.filter(status="failed").count() == 133  # nothing replayed in the request

    assert run_queued(REPLAY_BATCH) == ["finished"]  # the worker's task
    page.reload()
    expect(page.locator("#replay-batches")).to_contain_text("130 of 130 (100 %)")
    assert ReplayBatch.objects.get().queued == 130

    page.get_by_role(
        "link", name="Jira PUT /rest/api/3/issue/<issue> → 404: Issue does not exist (3)"
    ).click()
    first = Event.objects.filter(name="bill.create").order_by("pk").first()
    page.check(f"input[name=_selected_action][value='{first.pk}']")
    page.select_option("select[name=action]", "assign_selected")
    page.click("button[name=index]")
    page.select_option("#assignee", label="ann")
    page.click("#triage-submit")
    expect(page.locator(".messagelist")).to_contain_text("Assigned 1 event(s) to ann.")

    page.check("#action-toggle")
    page.select_option("select[name=action]", "resolve_selected")
    page.click("button[name=index]")
    expect(page.locator("#triage-count")).to_contain_text("3 failed events selected.")
    page.fill("#note", "Issues deleted on purpose in Jira")
    page.click("#triage-submit")
    expect(page.locator(".messagelist")).to_contain_text("Resolved 3 event(s) without retry.")

    page.goto(f"{live_server.url}/admin/audit/event/{first.pk}/change/")
    body = page.locator("#content-main")
    expect(body).to_contain_text("Resolved without retry by otto · assigned to ann")
    expect(body).to_contain_text("Issues deleted on purpose in Jira")
    page.screenshot(path="test-artifacts/triage-event.png", full_page=True)
