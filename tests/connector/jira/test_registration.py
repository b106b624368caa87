"""Jira webhook registration and refresh against a fake Jira Cloud (every /rest/api/3 call spec-checked)."""

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from django.utils.module_loading import import_string

from connector.jira import registration
from connector.models import IssueMapping
from connector.sandbox.jira import API_TOKEN, EMAIL, FakeJira, install_core_routes
from connector.sandbox.jira_webhooks import install_webhook_routes
from tenants.models import ConnectionStatus, JiraSite

CLOUD_ID = "11223344-aaaa-bbbb-cccc-556677889900"
ACCESS = "atl-access-token"
# openapi-core cannot check OAuth2 security schemes; request bodies and parameters are still validated.
pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")


@pytest.fixture
def oauth_jira(settings):
    """Atlassian's gateway in front of a Jira Cloud site, for OAuth 2.0 (app) callers."""
    jira = install_webhook_routes(install_core_routes(FakeJira(cloud_id=CLOUD_ID, bearer_tokens={ACCESS})))
    settings.ATLASSIAN_API_URL = jira.url
    yield jira
    jira.close()
    assert not jira.spec_errors, "\n".join(jira.spec_errors)


def add_mapping(tenant, key):
    return IssueMapping.objects.create(
        tenant=tenant, name=f"Invoices {key}", event="invoice.create", project_key=key,
        summary_template="Invoice {{ invoice.invoice_number }}",
    )  # fmt: skip


@pytest.fixture
def oauth_site(tenant, oauth_jira):
    add_mapping(tenant, "FIN")
    return JiraSite.objects.create(
        tenant=tenant, base_url="https://acme.atlassian.net", cloud_id=CLOUD_ID,
        auth_method=JiraSite.AuthMethod.OAUTH2, access_token=ACCESS, refresh_token="atl-refresh",
        token_expires_at=timezone.now() + timedelta(hours=1), status=ConnectionStatus.CONNECTED,
    )  # fmt: skip


@pytest.fixture
def basic_jira(fake_jira):
    return install_webhook_routes(fake_jira)


@pytest.fixture
def basic_site(tenant, basic_jira):
    add_mapping(tenant, "FIN")
    return JiraSite.objects.create(
        tenant=tenant, base_url=basic_jira.url, email=EMAIL, api_token=API_TOKEN,
        status=ConnectionStatus.CONNECTED,
    )  # fmt: skip


def reloaded(site):
    """A simulated restart: a new object with only what the database holds."""
    return JiraSite.objects.get(pk=site.pk)


def set_fake_expiry(jira, hook_id, when):
    jira.state["dynamic_webhooks"][hook_id]["expires_ms"] = int(when.timestamp() * 1000)


# --- expiry parsing ------------------------------------------------------------------------------

EXPECTED = datetime(2019, 6, 1, 12, 42, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [1559392950000, "1559392950000", "2019-06-01T12:42:30.000+0000", "2019-06-01T14:42:30.000+02:00",
     "2019-06-01T12:42:30Z"],
)  # fmt: skip
def test_expiry_parses_epoch_milliseconds_and_iso_strings(value):
    assert registration.parse_expiry(value) == EXPECTED


@pytest.mark.parametrize("value", [None, "", "next month", True, {"ms": 1}])
def test_unparseable_expiry_is_none(value):
    assert registration.parse_expiry(value) is None


# --- OAuth 2.0 sites: dynamic webhooks ----------------------------------------------------------


def test_registration_twice_and_after_restart_leaves_one_webhook_set(oauth_site, oauth_jira):
    assert registration.register(oauth_site)
    assert registration.register(oauth_site)
    assert registration.register(reloaded(oauth_site))
    # Even a site that lost its stored ids finds its webhook in Jira instead of adding one.
    JiraSite.objects.filter(pk=oauth_site.pk).update(webhook_ids=[])
    assert registration.register(reloaded(oauth_site))

    hooks = list(oauth_jira.state["dynamic_webhooks"].values())
    assert len(hooks) == 1
    assert hooks[0]["url"] == "https://connector.example.test/webhooks/jira/"
    assert set(hooks[0]["events"]) == {"jira:issue_updated", "jira:issue_deleted"}
    assert hooks[0]["jqlFilter"] == "project in (FIN)"
    assert len(oauth_jira.calls("POST", r"/rest/api/3/webhook$")) == 1
    site = reloaded(oauth_site)
    assert site.webhook_ids == [hooks[0]["id"]]
    assert site.webhook_error == ""
    assert site.webhook_expires_at > timezone.now() + timedelta(days=29)
    assert site.webhook_refreshed_at is not None


def test_failed_registration_item_is_reported_on_the_site(oauth_site, oauth_jira, caplog):
    oauth_jira.state["registration_errors"] = ["The clause watchCount is unsupported"]
    with caplog.at_level(logging.ERROR, logger="connector.jira.registration"):
        assert not registration.register(oauth_site)
    site = reloaded(oauth_site)
    assert "watchCount is unsupported" in site.webhook_error
    assert site.webhook_ids == []
    assert site.status == ConnectionStatus.CONNECTED
    assert any("watchCount" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


def test_jql_follows_the_mapped_projects_and_old_webhook_is_removed(oauth_site, oauth_jira, tenant):
    registration.register(oauth_site)
    old_id = reloaded(oauth_site).webhook_ids[0]
    add_mapping(tenant, "OPS")
    add_mapping(tenant, "bad key; delete")  # never reaches JQL
    assert registration.register(reloaded(oauth_site))
    hooks = list(oauth_jira.state["dynamic_webhooks"].values())
    assert [h["jqlFilter"] for h in hooks] == ["project in (FIN, OPS)"]
    assert hooks[0]["id"] != old_id
    assert reloaded(oauth_site).webhook_ids == [hooks[0]["id"]]


def test_no_mapped_project_means_nothing_to_register(oauth_site, oauth_jira):
    IssueMapping.objects.update(enabled=False)
    assert not registration.register(oauth_site)
    assert "nothing to watch" in reloaded(oauth_site).webhook_error
    assert oauth_jira.state["dynamic_webhooks"] == {}


@pytest.mark.parametrize("expiry_format", ["ms", "iso"])
def test_refresh_extends_the_stored_expiry(oauth_site, oauth_jira, expiry_format):
    oauth_jira.state["expiry_format"] = expiry_format
    registration.register(oauth_site)
    site = reloaded(oauth_site)
    hook_id = site.webhook_ids[0]
    soon = timezone.now() + timedelta(days=3)
    set_fake_expiry(oauth_jira, hook_id, soon)
    JiraSite.objects.filter(pk=site.pk).update(webhook_expires_at=soon)

    assert registration.refresh(reloaded(site))
    refreshes = oauth_jira.calls("PUT", r"/webhook/refresh$")
    assert [r.json() for r in refreshes] == [{"webhookIds": [hook_id]}]
    site = reloaded(site)
    assert site.webhook_expires_at > timezone.now() + timedelta(days=29)
    assert site.webhook_ids == [hook_id]
    assert len(oauth_jira.state["dynamic_webhooks"]) == 1


def test_refresh_is_skipped_when_not_due_but_existence_is_checked(oauth_site, oauth_jira):
    registration.register(oauth_site)
    assert registration.refresh(reloaded(oauth_site))
    assert oauth_jira.calls("PUT", r"/webhook/refresh$") == []
    assert len(oauth_jira.calls("GET", r"/rest/api/3/webhook$")) == 2


def test_webhook_missing_from_the_list_is_registered_again(oauth_site, oauth_jira):
    registration.register(oauth_site)
    site = reloaded(oauth_site)
    old_id = site.webhook_ids[0]
    oauth_jira.state["dynamic_webhooks"].clear()  # deleted in Jira, or lapsed
    JiraSite.objects.filter(pk=site.pk).update(webhook_expires_at=timezone.now() + timedelta(days=1))

    assert registration.refresh(reloaded(site))
    # The list is asked first: an id Jira no longer holds is not refreshed (Jira would ignore it silently).
    assert len(oauth_jira.calls("PUT", r"/webhook/refresh$")) == 0
    hooks = list(oauth_jira.state["dynamic_webhooks"].values())
    assert len(hooks) == 1 and hooks[0]["id"] != old_id
    assert reloaded(site).webhook_ids == [hooks[0]["id"]]


def test_refresh_failure_keeps_last_good_refresh_time(oauth_site, oauth_jira, caplog):
    registration.register(oauth_site)
    good = reloaded(oauth_site).webhook_refreshed_at
    oauth_jira.state["fail_next"] = [
        {"method": "PUT", "path": r"/webhook/refresh$", "status": 403,
         "body": {"errorMessages": ["Unauthorized; scope does not match"]}}
    ]  # fmt: skip
    with caplog.at_level(logging.ERROR, logger="connector.jira.registration"):
        assert not registration.refresh(reloaded(oauth_site), force=True)
    site = reloaded(oauth_site)
    assert "scope does not match" in site.webhook_error and "manage:jira-webhook" in site.webhook_error
    assert site.webhook_refreshed_at == good
    assert any(r.levelno == logging.ERROR for r in caplog.records)


# --- API-token sites: admin webhooks --------------------------------------------------------------


def test_admin_webhook_registered_once_with_an_encrypted_secret(basic_site, basic_jira):
    assert registration.register(basic_site)
    assert registration.register(basic_site)
    assert registration.register(reloaded(basic_site))
    hooks = list(basic_jira.state["admin_webhooks"].values())
    assert len(hooks) == 1
    site = reloaded(basic_site)
    assert hooks[0]["url"] == f"https://connector.example.test/webhooks/jira/{site.uuid}/"
    assert {"jira:issue_deleted", "worklog_deleted"} <= set(hooks[0]["events"])
    assert hooks[0]["filters"] == {"issue-related-events-section": "project in (FIN)"}
    assert len(site.webhook_secret) >= 32 and hooks[0]["secret"] == site.webhook_secret
    assert site.webhook_expires_at is None and site.webhook_error == ""
    with connection.cursor() as cursor:
        cursor.execute("SELECT webhook_secret FROM tenants_jirasite WHERE id = %s", [site.pk])
        stored = cursor.fetchone()[0]
    assert site.webhook_secret not in str(stored)


def test_admin_webhook_without_secret_on_file_gets_a_new_one(basic_site, basic_jira):
    registration.register(basic_site)
    JiraSite.objects.filter(pk=basic_site.pk).update(webhook_secret="")
    assert registration.register(reloaded(basic_site))
    hooks = list(basic_jira.state["admin_webhooks"].values())
    assert len(hooks) == 1 and hooks[0]["secret"] == reloaded(basic_site).webhook_secret != ""


def test_without_jira_admin_rights_registration_fails_cleanly(basic_site, basic_jira, caplog):
    basic_jira.state["is_admin"] = False
    with caplog.at_level(logging.ERROR, logger="connector.jira.registration"):
        assert not registration.register(basic_site)
    site = reloaded(basic_site)
    assert "administrator" in site.webhook_error
    assert site.status == ConnectionStatus.CONNECTED and site.webhook_ids == [] and site.webhook_secret == ""
    assert basic_jira.state["admin_webhooks"] == {}
    assert any(r.levelno == logging.ERROR for r in caplog.records)


def test_deleted_admin_webhook_is_registered_again_on_refresh(basic_site, basic_jira):
    registration.register(basic_site)
    basic_jira.state["admin_webhooks"].clear()
    assert registration.refresh(reloaded(basic_site))
    hooks = list(basic_jira.state["admin_webhooks"].values())
    assert len(hooks) == 1
    assert reloaded(basic_site).webhook_ids == [hooks[0]["self"].rsplit("/", 1)[1]]


# --- command and schedule --------------------------------------------------------------------------


def test_command_registers_and_refreshes(basic_site, basic_jira, capsys):
    call_command("refresh_jira_webhooks", "--tenant", "acme", "--register")
    call_command("refresh_jira_webhooks")
    assert "acme: webhooks" in capsys.readouterr().out
    assert len(basic_jira.state["admin_webhooks"]) == 1


def test_command_errors_are_one_line(basic_site, basic_jira):
    with pytest.raises(CommandError, match="No tenant with slug 'nope'"):
        call_command("refresh_jira_webhooks", "--tenant", "nope")
    basic_jira.state["is_admin"] = False
    with pytest.raises(CommandError, match="failed for: acme"):
        call_command("refresh_jira_webhooks", "--register")


def test_daily_schedule_exists_once(db):
    from django_q.models import Schedule

    from config.queueing import ensure_schedules
    from connector.schedules import SCHEDULES

    ensure_schedules(SCHEDULES)  # migrate already ran it once
    schedules = Schedule.objects.filter(name="refresh-jira-webhooks")
    assert schedules.count() == 1
    assert schedules[0].schedule_type == Schedule.DAILY
    # The stored function is what the worker calls: it resolves and refreshes (no site here: nothing to do).
    assert import_string(schedules[0].func)() == {"ok": 0, "failed": []}
    schedules.update(schedule_type=Schedule.HOURLY)  # an operator's choice
    ensure_schedules(SCHEDULES)
    assert schedules.get().schedule_type == Schedule.HOURLY


def test_disconnected_site_is_not_touched(basic_site, basic_jira):
    JiraSite.objects.filter(pk=basic_site.pk).update(status=ConnectionStatus.DISCONNECTED)
    assert not registration.register(reloaded(basic_site))
    assert reloaded(basic_site).webhook_error == "The Jira site is not connected."
    assert basic_jira.calls() == []
    assert registration.refresh_all() == {"ok": 0, "failed": []}


def test_scheduled_task_refreshes_every_connected_site(basic_site, basic_jira):
    assert registration.refresh_all() == {"ok": 1, "failed": []}
    assert len(basic_jira.state["admin_webhooks"]) == 1


# --- admin --------------------------------------------------------------------------------------------


def run_action(staff_client, action, site):
    return staff_client.post(
        "/admin/tenants/jirasite/", {"action": action, "_selected_action": [site.pk]}, follow=True
    )


def test_admin_actions_register_refresh_and_show_why_it_failed(staff_client, basic_site, basic_jira):
    page = run_action(staff_client, "register_jira_webhooks", basic_site)
    assert "webhooks registered" in page.content.decode()
    assert len(basic_jira.state["admin_webhooks"]) == 1
    assert "OK (last good refresh" in staff_client.get("/admin/tenants/jirasite/").content.decode()

    basic_jira.state["is_admin"] = False
    page = run_action(staff_client, "refresh_jira_webhooks", basic_site).content.decode()
    assert "needs Jira administrator rights" in page
    listing = staff_client.get("/admin/tenants/jirasite/").content.decode()
    assert "Failing: Jira refused to register the admin webhook" in listing
    assert reloaded(basic_site).webhook_secret not in listing


def test_token_refreshed_during_registration_is_kept_when_jira_answers_oddly(
    oauth_site, oauth_jira, settings
):
    """Atlassian rotates refresh tokens: the new one must be saved even when the registration then fails."""
    from connector.sandbox.atlassian import make_fake_atlassian

    auth = make_fake_atlassian(oauth_jira)
    settings.ATLASSIAN_AUTH_URL = auth.url
    auth.state["refresh_tokens"].add("atl-refresh")
    JiraSite.objects.filter(pk=oauth_site.pk).update(token_expires_at=timezone.now() - timedelta(minutes=1))
    oauth_jira.route("GET", r"/rest/api/3/webhook", first=True)(lambda request: ["not a page"])
    try:
        assert not registration.register(reloaded(oauth_site))
    finally:
        auth.close()
    site = reloaded(oauth_site)
    assert "unexpected shape" in site.webhook_error
    assert site.refresh_token != "atl-refresh" and site.refresh_token in auth.state["refresh_tokens"]
    assert site.status == ConnectionStatus.CONNECTED
