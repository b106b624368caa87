"""The built-in sandbox (connector.sandbox): the same vendor fakes the tests use, run as the product's sandbox.

Its FreshBooks signs deliveries the way FreshBooks does and the connector accepts them; its state survives a
restart; a "lost" delivery leaves a record FreshBooks has but the connector never heard of; it never runs
where vendor credentials are set."""

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.utils import timezone

from audit.models import Event
from connector.reconcile import reconcile
from connector.sandbox import runtime, samples
from connector.sandbox import state as saved_state
from connector.sandbox.jira import API_TOKEN, EMAIL
from connector.sandbox.runtime import Sandbox
from connector.sandbox.tenant import setup_tenant
from tests.factories import JiraSiteFactory
from tests.processing import connected_account

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def sandbox(tmp_path):
    running = Sandbox(state_path=tmp_path / "sandbox.json", verify_delay=0.05)
    yield running
    running.close()


def wait_for(condition, timeout=10):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_tests_fakes_are_the_sandbox():
    from connector.sandbox import freshbooks, jira, server

    assert runtime.make_fake_freshbooks is freshbooks.make_fake_freshbooks
    assert runtime.FakeJira is jira.FakeJira and issubclass(jira.FakeJira, server.FakeServer)
    assert not (ROOT / "tests" / "fakes").exists(), "one implementation: tests import connector.sandbox"


def test_state_codec_keeps_sets_and_integer_keys():
    state = {
        "callbacks": {1001: {"verified": True}},
        "tokens": {"a", "b"},
        "hook": print,
        "n": [1, {"x": None}],
    }
    assert saved_state.load(saved_state.dump(state)) == {
        "callbacks": {1001: {"verified": True}}, "tokens": {"a", "b"}, "n": [1, {"x": None}],
    }  # fmt: skip


def test_state_survives_a_restart(tmp_path):
    path = tmp_path / "sandbox.json"
    first = Sandbox(state_path=path)
    entry = first.create("invoice", samples.defaults("invoice"), lose=True)
    first.jira.state["issues"]["FIN-1"] = {"id": "10002", "key": "FIN-1", "fields": {"summary": "kept"},
                                           "properties": {}, "hidden_searches": 0}  # fmt: skip
    first.jira.state["issue_counters"]["FIN"] = 1
    first.close()

    second = Sandbox(state_path=path)
    try:
        assert second.fb.state["activity"][0]["object_id"] == entry["object_id"]
        assert entry["object_id"] in second.fb.state["records"]["invoice"]
        assert second.jira.state["issues"]["FIN-1"]["fields"]["summary"] == "kept"
        assert second.jira.state["issue_counters"] == {"FIN": 1}, (
            "the next issue is FIN-2, not a second FIN-1"
        )
        page = requests.get(second.jira.url + "/browse/FIN-1", timeout=5)
        assert page.status_code == 200 and "kept" in page.text
    finally:
        second.close()


def test_sample_fields_are_editable_and_payments_have_their_kind(sandbox):
    invoice_entry = sandbox.create(
        "invoice", {**samples.defaults("invoice"), "client": "Melmac Ltd"}, lose=True
    )
    fields = {
        **samples.defaults("payment_refunded"),
        "amount": "75.50",
        "invoice": invoice_entry["object_id"],
    }
    entry = sandbox.create("payment_refunded", fields, lose=True)
    payment = sandbox.fb.state["records"]["payment"][entry["object_id"]]
    invoice = sandbox.fb.state["records"]["invoice"][str(payment["invoiceid"])]
    client = sandbox.fb.state["records"]["client"][str(invoice["customerid"])]
    assert payment["amount"] == {"amount": "-75.50", "code": "USD"} and payment["type"] == "Refund"
    assert client["organization"] == "Melmac Ltd"
    assert payment["updated"][:4] == invoice["updated"][:4] == str(time.gmtime().tm_year), "updated now"
    failed = sandbox.create("payment_failed", samples.defaults("payment_failed"), lose=True)
    failed_invoice_id = sandbox.fb.state["records"]["payment"][failed["object_id"]]["invoiceid"]
    assert sandbox.fb.state["records"]["invoice"][str(failed_invoice_id)]["v3_status"] == "failed"


def test_sandbox_page_creates_a_record_from_the_form_and_refuses_cross_site_posts(sandbox):
    form = {"sample": "expense", "vendor": "Serano Bakery", "amount": "12.00", "lose": "1"}
    answer = requests.post(sandbox.fb.url + "/_sandbox/create", data=form, allow_redirects=False, timeout=5)
    assert answer.status_code == 303 and answer.headers["Location"] == "/?sample=expense#activity"
    assert sandbox.fb.state["activity"][0]["event"] == "expense.create"
    assert sandbox.fb.state["activity"][0]["delivery"] == "lost (never delivered)"
    page = requests.get(sandbox.fb.url + "/?sample=expense", timeout=5).text
    assert "lost (never delivered)" in page and "Serano Bakery" in page

    bad = requests.post(sandbox.fb.url + "/_sandbox/create", data={**form, "amount": "lots"}, timeout=5)
    assert bad.status_code == 400 and "must be numbers" in bad.text

    forged = requests.post(sandbox.fb.url + "/_sandbox/create", data=form, timeout=5,
                           headers={"Origin": "https://evil.example"})  # fmt: skip
    assert forged.status_code == 403


@pytest.mark.django_db(transaction=True)
def test_deliveries_are_signed_like_freshbooks_and_accepted(sandbox, live_server, settings, tenant):
    """The sandbox verifies its callback by itself (callback.verify), then a created invoice arrives signed
    with that callback's verifier and is stored; a lost one never arrives."""
    from connector.freshbooks import registration
    from tenants.models import FreshBooksWebhook

    settings.PUBLIC_BASE_URL = live_server.url
    settings.FRESHBOOKS_API_URL = sandbox.fb.url
    account = connected_account(tenant)
    create_default_mappings_for(tenant)
    registration.register(account, actor="test")
    hook = FreshBooksWebhook.objects.get(account=account, event="invoice.create")
    wait_for(lambda: FreshBooksWebhook.objects.get(pk=hook.pk).verifier)  # callback.verify arrived
    registration.confirm_verification(hook.pk)  # what the worker does next
    assert sandbox.fb.state["callbacks"][hook.callback_id]["verified"]

    entry = sandbox.create("invoice", samples.defaults("invoice"))
    wait_for(lambda: Event.objects.filter(name="invoice.create").exists())
    event = Event.objects.get(name="invoice.create")
    assert event.object_id == entry["object_id"] and event.status == Event.Status.QUEUED
    # Stored means the signature checked out against the verifier of the callback (401 otherwise).
    wait_for(lambda: "HTTP 200" in sandbox.fb.state["activity"][0]["delivery"])

    lost = sandbox.create("invoice", samples.defaults("invoice"), lose=True)
    time.sleep(0.3)
    assert not Event.objects.filter(object_id=lost["object_id"]).exists()
    assert lost["object_id"] in sandbox.fb.state["records"]["invoice"], (
        "FreshBooks has it: reconcile finds it"
    )


def create_default_mappings_for(tenant):
    from connector.defaults import create_default_mappings

    create_default_mappings(tenant, "FIN")


@pytest.mark.django_db
def test_setup_tenant_has_default_mappings_and_the_worklog_rule():
    tenant, created = setup_tenant()
    assert created and tenant.slug == "sandbox"
    assert tenant.mappings.count() == 6
    assert [str(rule) for rule in tenant.worklog_rules.all()] == ["Issue key in note"]
    assert setup_tenant() == (tenant, False)


def run_settings(env):
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FRESHBOOKS_", "ATLASSIAN_"))
    } | env
    env.setdefault("DEBUG", "1")
    show = "from django.conf import settings; print(settings.SANDBOX, 'connector.sandbox' in settings.INSTALLED_APPS)"
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", show],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_sandbox_mode_is_on_without_vendor_credentials_and_never_with_them(tmp_path):
    db = {"DATABASE_URL": f"sqlite:///{tmp_path}/x", "SANDBOX": ""}
    assert run_settings(db).stdout.split() == ["True", "True"], (
        "no credentials: sandbox mode, the app installed"
    )
    with_credentials = {**db, "FRESHBOOKS_CLIENT_ID": "real-id", "FRESHBOOKS_CLIENT_SECRET": "real-secret"}
    assert run_settings(with_credentials).stdout.split() == ["False", "False"], "credentials: no sandbox"
    allowed = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.ALLOW_LOCAL_VENDOR_URLS, "
         "settings.FRESHBOOKS_API_URL)"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith(("FRESHBOOKS_", "ATLASSIAN_", "SANDBOX",
             "ALLOW_LOCAL"))} | db | {"DEBUG": "0", "SECRET_KEY": "s" * 50, "FERNET_KEYS": "k",
                                      "DJANGO_SETTINGS_MODULE": "config.settings"},
    )  # fmt: skip
    assert allowed.stdout.split() == ["True", "http://127.0.0.1:8101"], allowed.stderr
    refused = run_settings({**with_credentials, "SANDBOX": "1"})
    assert refused.returncode != 0
    assert "the sandbox never runs where vendor credentials are set" in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.django_db
def test_sandbox_banner_only_in_sandbox_mode(staff_client, settings):
    settings.SANDBOX = False
    assert "sandbox-banner" not in staff_client.get("/admin/").content.decode()
    settings.SANDBOX = True
    page = staff_client.get("/admin/").content.decode()
    assert "sandbox-banner" in page and f'href="{settings.FRESHBOOKS_API_URL}/"' in page


def test_the_stream_creates_records_steadily(sandbox):
    sandbox.fb.state["stream"] = {"on": True, "interval": 2}
    wait_for(lambda: len(sandbox.fb.state["activity"]) >= 1, timeout=8)
    sandbox.fb.state["stream"] = {"on": False, "interval": 2}
    entry = sandbox.fb.state["activity"][0]
    assert entry["event"] in {"invoice.create", "bill.create", "payment.create", "expense.create"}
    assert entry["object_id"] in sandbox.fb.state["records"][entry["event"].split(".")[0]]


@pytest.mark.django_db
def test_sandbox_command_says_when_its_port_is_taken(sandbox, settings):
    from django.core.management import CommandError, call_command

    settings.SANDBOX = True
    settings.FRESHBOOKS_API_URL = sandbox.fb.url  # already listening
    with pytest.raises(
        CommandError, match="cannot listen on 127.0.0.1 ports .*Is another `make run` running"
    ):
        call_command("sandbox")


@pytest.mark.django_db
def test_a_lost_sandbox_delivery_is_found_by_reconcile(sandbox, settings, tenant):
    """ "Create, but lose the webhook": FreshBooks has the invoice, the connector never heard of it; a
    reconcile pass lists it from the sandbox and queues its event."""
    settings.FRESHBOOKS_API_URL = sandbox.fb.url
    connected_account(tenant)
    JiraSiteFactory(tenant=tenant, base_url=sandbox.jira.url)
    create_default_mappings_for(tenant)
    lost = sandbox.create("invoice", samples.defaults("invoice"), lose=True)
    result = reconcile(tenant, since=timezone.now() - timedelta(hours=1), kinds=["invoice"], actor="test")
    assert result.ok, result.detail
    assert [(e.name, e.object_id) for e in result.created] == [("invoice.create", lost["object_id"])]


def test_the_jira_sandbox_page_exhausts_the_quota_for_oauth_calls(sandbox):
    """The operator's button: OAuth calls answer a quota 429 until the reset (or a refill); the page says so."""
    jira = sandbox.jira
    token = "sandbox-oauth-token"
    jira.credentials["bearer"].add(token)
    api = f"{jira.url}/ex/jira/{jira.cloud_id}/rest/api/3/myself"
    bearer = {"Authorization": f"Bearer {token}"}
    assert requests.get(api, headers=bearer, timeout=5).status_code == 200
    assert "Exhaust the quota" in requests.get(f"{jira.url}/", timeout=5).text

    assert requests.post(f"{jira.url}/_sandbox/quota/exhaust", headers={"Origin": "https://evil.test"},
                         timeout=5).status_code == 403  # fmt: skip
    page = requests.post(f"{jira.url}/_sandbox/quota/exhaust", timeout=5)
    assert "<strong>0</strong> of 65000 points left" in page.text
    refused = requests.get(api, headers=bearer, timeout=5)
    assert refused.status_code == 429 and refused.headers["RateLimit-Reason"] == "jira-quota-global-based"
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert (
        requests.get(f"{jira.url}/rest/api/3/myself", auth=(EMAIL, API_TOKEN), timeout=5).status_code == 200
    )

    requests.post(f"{jira.url}/_sandbox/quota/refill", timeout=5)
    assert requests.get(api, headers=bearer, timeout=5).status_code == 200


def test_sandbox_mode_signs_in_with_the_sandbox_oauth_apps(tmp_path):
    """Settings compute sandbox mode from the environment alone (no sandbox import); the client ids they use
    in sandbox mode are the ones the sandbox's fake FreshBooks and Atlassian accept."""
    from connector.sandbox import atlassian, freshbooks_auth

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FRESHBOOKS_", "ATLASSIAN_"))}
    env |= {"DATABASE_URL": f"sqlite:///{tmp_path}/x", "SANDBOX": "", "DEBUG": "1"}
    show = (
        "import sys; from django.conf import settings; "
        "print(settings.FRESHBOOKS_CLIENT_ID, settings.FRESHBOOKS_CLIENT_SECRET, settings.ATLASSIAN_CLIENT_ID, "
        "settings.ATLASSIAN_CLIENT_SECRET, 'connector.sandbox' in sys.modules)"
    )
    shown = subprocess.run(
        [sys.executable, "-c", show],
        cwd=ROOT,
        env=env | {"DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.stdout.split() == [
        freshbooks_auth.CLIENT_ID,
        freshbooks_auth.CLIENT_SECRET,
        atlassian.CLIENT_ID,
        atlassian.CLIENT_SECRET,
        "False",
    ], shown.stderr


def test_the_jira_page_makes_jira_misbehave_and_the_connector_says_so_plainly(sandbox, tenant):
    """An operator switches the sandbox's Jira to what real sites do (moved, behind SSO, token expired) and sees
    the connector's reason; cross-site posts are refused."""
    from connector.errors import JiraError
    from connector.jira.client import JiraClient

    site = JiraSiteFactory(tenant=tenant, base_url=sandbox.jira.url)
    page = requests.get(sandbox.jira.url + "/", timeout=5).text
    assert 'id="behaviour"' in page and "behind SSO" in page
    url = sandbox.jira.url + "/_sandbox/behaviour"
    forged = requests.post(
        url, data={"behaviour": "moved"}, headers={"Origin": "https://evil.example"}, timeout=5
    )
    assert forged.status_code == 403 and not sandbox.jira.state.get("moved_to")
    expected = {
        "moved": "redirect to " + sandbox.jira.url + "/jira/rest/api/3/myself",
        "login_page": "not the JSON asked for",
        "token_expired": "Jira refused the API token",
    }
    for name, reason in expected.items():
        assert (
            requests.post(url, data={"behaviour": name}, allow_redirects=False, timeout=5).status_code == 303
        )
        with pytest.raises(JiraError, match=reason):
            JiraClient(site, actor="check", sleep=lambda s: None).myself()
    requests.post(url, data={"behaviour": ""}, timeout=5)
    assert JiraClient(site, actor="check").myself()["displayName"]
