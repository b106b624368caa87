"""Time entries out of the box: a tenant made by create_tenant (or the admin's add-tenant form) gets the enabled
"Jira issue key in the entry's note" rule, so register_webhooks asks for time_entry.* callbacks and a time entry
naming an existing issue becomes one worklog with no further set-up."""

import io
import re
import sys

import pytest
from django.core.management import call_command
from django.urls import reverse

from connector.freshbooks import registration
from connector.models import WorklogRule
from connector.sandbox.freshbooks_callbacks import install_callback_routes
from connector.sandbox.jira import API_TOKEN, EMAIL
from tenants.models import Tenant
from tests.connector.handlers.test_worklogs import ENTRY, add_issue
from tests.processing import connected_account, process, worklogs

pytestmark = pytest.mark.django_db
TIME_EVENTS = {"time_entry.create", "time_entry.update", "time_entry.delete"}


def create_tenant(jira, *extra):
    out = io.StringIO()
    call_command("create_tenant", "--name", "Globex Inc", "--slug", "globex", "--jira-url", jira.url,
                 "--jira-email", EMAIL, "--jira-project", "FIN", *extra, stdout=out, stderr=io.StringIO())  # fmt: skip
    return Tenant.objects.get(slug="globex"), out.getvalue()


@pytest.fixture
def tty_less(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    monkeypatch.setenv("JIRA_API_TOKEN", API_TOKEN)


def test_a_default_tenant_registers_time_entry_callbacks_and_logs_a_named_issue(fb, jira, tty_less):
    tenant, out = create_tenant(jira)
    assert list(WorklogRule.objects.filter(tenant=tenant).values_list("match_kind", "enabled")) == [
        ("note_key", True)
    ]
    assert "become worklogs" in out

    install_callback_routes(fb)
    connected_account(tenant)
    call_command("register_webhooks", "--tenant", "globex", stdout=io.StringIO())
    registered = {
        c["event"] for c in fb.state["callbacks"].values() if c["uri"] == registration.webhook_uri()
    }
    assert registered >= TIME_EVENTS

    add_issue(jira, "FIN-7")
    fb.samples["time_entry"]["note"] = "Quarter close call for FIN-7"
    event = process(tenant, "time_entry.create", ENTRY)
    assert event.status == "succeeded", event.status_detail
    assert [(w["issueId"], w["timeSpentSeconds"]) for w in worklogs(jira)] == [
        (jira.state["issues"]["FIN-7"]["id"], 9840)
    ]


def test_the_rule_can_be_turned_off(jira, tty_less):
    tenant, _ = create_tenant(jira, "--no-worklog-rule")
    assert not WorklogRule.objects.filter(tenant=tenant).exists()
    assert not TIME_EVENTS & registration.needed_events(tenant)


def admin_add_form(staff_client, **fields):
    page = staff_client.get(reverse("admin:tenants_tenant_add")).content.decode()
    hidden = re.findall(r'name="([\w-]+-(?:TOTAL|INITIAL|MIN_NUM|MAX_NUM)_FORMS)"[^>]*value="(\d*)"', page)
    assert 'name="worklog_from_note"' in page and "checked" in page.split('name="worklog_from_note"')[1][:120]
    return {**dict(hidden), "active": "on", "settings": "{}", **fields}


def test_the_admin_add_tenant_form_creates_the_rule_unless_unticked(staff_client):
    url = reverse("admin:tenants_tenant_add")
    form = admin_add_form(staff_client, name="Globex", slug="globex", jira_project_key="FIN")
    assert staff_client.post(url, {**form, "worklog_from_note": "on"}).status_code == 302
    assert WorklogRule.objects.get(tenant__slug="globex").match_kind == "note_key"

    form = admin_add_form(staff_client, name="Initech", slug="initech")
    assert staff_client.post(url, form).status_code == 302  # the box unticked
    assert not WorklogRule.objects.filter(tenant__slug="initech").exists()
