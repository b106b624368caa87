"""Registrations are reconciled from what the connector registered (ids on file), not from the current URL:
after PUBLIC_BASE_URL changes, its own registrations at the old URL are removed (or moved) and never kept
alive (research row 05: Jira allows one webhook URL per app, so the old one blocked registration forever)."""

import time

import pytest

from connector.freshbooks import registration as fb_registration
from connector.jira import registration as jira_registration
from connector.sandbox.freshbooks_callbacks import add_callback
from connector.sandbox.jira_webhooks import THIRTY_DAYS_MS
from tenants.models import FreshBooksWebhook, JiraSite
from tests.connector.freshbooks.test_registration import account, at_freshbooks, fb_callbacks, register  # noqa: F401 - fixtures
from tests.connector.jira.test_registration import (  # noqa: F401 - fixtures
    basic_jira,
    basic_site,
    oauth_jira,
    oauth_site,
    reloaded,
)

pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")
OLD = "https://old-connector.example.test"


def test_own_dynamic_webhook_at_an_old_url_is_deleted_then_the_current_url_registered(oauth_site, oauth_jira):  # noqa: F811
    oauth_jira.state["dynamic_webhooks"][1001] = {
        "id": 1001, "url": OLD + "/webhooks/jira/", "events": jira_registration.DYNAMIC_EVENTS,
        "jqlFilter": "project in (FIN)", "expires_ms": int(time.time() * 1000) + THIRTY_DAYS_MS,
    }  # fmt: skip
    oauth_jira.state["next_webhook_id"] = 2000
    JiraSite.objects.filter(pk=oauth_site.pk).update(webhook_ids=[1001])

    assert jira_registration.register(reloaded(oauth_site)), reloaded(oauth_site).webhook_error

    hooks = list(oauth_jira.state["dynamic_webhooks"].values())
    assert [h["url"] for h in hooks] == [jira_registration.dynamic_url()]
    assert reloaded(oauth_site).webhook_ids == [hooks[0]["id"]] != [1001]
    assert [r.json() for r in oauth_jira.calls("DELETE", r"/rest/api/3/webhook$")] == [{"webhookIds": [1001]}]


def test_refresh_never_extends_a_webhook_at_an_old_url(oauth_site, oauth_jira):  # noqa: F811
    oauth_jira.state["dynamic_webhooks"][1001] = {
        "id": 1001, "url": OLD + "/webhooks/jira/", "events": jira_registration.DYNAMIC_EVENTS,
        "jqlFilter": "project in (FIN)", "expires_ms": int(time.time() * 1000) + 3600_000,
    }  # fmt: skip
    oauth_jira.state["next_webhook_id"] = 2000
    JiraSite.objects.filter(pk=oauth_site.pk).update(webhook_ids=[1001])

    assert jira_registration.refresh(reloaded(oauth_site), force=True), reloaded(oauth_site).webhook_error

    for call in oauth_jira.calls("PUT", r"/webhook/refresh$"):
        assert 1001 not in call.json()["webhookIds"]
    assert 1001 not in oauth_jira.state["dynamic_webhooks"]
    assert [h["url"] for h in oauth_jira.state["dynamic_webhooks"].values()] == [
        jira_registration.dynamic_url()
    ]


def test_anothers_dynamic_webhook_at_another_url_is_left_alone(oauth_site, oauth_jira):  # noqa: F811
    oauth_jira.state["dynamic_webhooks"][1001] = {
        "id": 1001, "url": "https://someone-else.example/hook", "events": ["jira:issue_created"],
        "jqlFilter": "project in (OPS)", "expires_ms": int(time.time() * 1000) + THIRTY_DAYS_MS,
    }  # fmt: skip
    jira_registration.register(
        reloaded(oauth_site)
    )  # Jira refuses a second URL for the app: that is not ours to fix
    assert 1001 in oauth_jira.state["dynamic_webhooks"]
    assert not oauth_jira.calls("DELETE", r"/rest/api/3/webhook$")


def test_own_admin_webhook_at_an_old_url_is_moved_not_duplicated(basic_site, basic_jira):  # noqa: F811
    assert jira_registration.register(basic_site)
    (hook_id,) = basic_jira.state["admin_webhooks"]
    basic_jira.state["admin_webhooks"][hook_id]["url"] = OLD + f"/webhooks/jira/{basic_site.uuid}/"

    assert jira_registration.register(reloaded(basic_site)), reloaded(basic_site).webhook_error

    hooks = list(basic_jira.state["admin_webhooks"].values())
    assert len(hooks) == 1 and hooks[0]["url"] == jira_registration.admin_url(basic_site)
    assert reloaded(basic_site).webhook_ids == [str(hook_id)]


def test_freshbooks_callbacks_we_created_at_an_old_uri_are_replaced(fb_callbacks, account):  # noqa: F811
    old_uri = OLD + "/webhooks/freshbooks/"
    ours = add_callback(fb_callbacks, "invoice.create", old_uri, verified=True)
    FreshBooksWebhook.objects.create(account=account, callback_id=ours, event="invoice.create", uri=old_uri)
    theirs = add_callback(fb_callbacks, "invoice.create", "https://other-integration.example/hook")

    output = register("--tenant", "acme")

    assert f"invoice.create #{ours}" in output
    assert ours not in fb_callbacks.state["callbacks"] and theirs in fb_callbacks.state["callbacks"]
    assert at_freshbooks(fb_callbacks, old_uri) == []
    assert ("invoice.create", fb_registration.webhook_uri()) in at_freshbooks(fb_callbacks)
    assert not FreshBooksWebhook.objects.filter(uri=old_uri).exists()
