"""Foundation: settings guard, encryption at rest, key rotation, admin pages, health check."""

import base64
import os
import secrets
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from audit.models import Attempt, Event
from tenants.models import FreshBooksAccount, FreshBooksWebhook, JiraSite
from tests import ROOT


def new_key():
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


SECRETS = {
    "fb_access": "fb-access-token-PLAINTEXT-1",
    "fb_refresh": "fb-refresh-token-PLAINTEXT-2",
    "verifier": "verifier-PLAINTEXT-3",
    "api_token": "jira-api-token-PLAINTEXT-4",
    "jira_access": "jira-access-PLAINTEXT-5",
    "jira_refresh": "jira-refresh-PLAINTEXT-6",
    "hook_secret": "jira-hook-secret-PLAINTEXT-7",
    "payload": "payload-value-PLAINTEXT-8",
    "record": "record-client-PLAINTEXT-9",
    "request": "request-summary-PLAINTEXT-10",
    "response": "response-body-PLAINTEXT-11",
}


@pytest.fixture
def secret_rows(tenant):
    account = FreshBooksAccount.objects.create(
        tenant=tenant,
        account_id="6BApk",
        business_id="6543",
        access_token=SECRETS["fb_access"],
        refresh_token=SECRETS["fb_refresh"],
    )
    FreshBooksWebhook.objects.create(
        account=account,
        callback_id=1,
        event="invoice.create",
        uri="https://x.test/",
        verifier=SECRETS["verifier"],
    )
    JiraSite.objects.create(
        tenant=tenant,
        base_url="https://acme.atlassian.net",
        email="ops@example.com",
        api_token=SECRETS["api_token"],
        access_token=SECRETS["jira_access"],
        refresh_token=SECRETS["jira_refresh"],
        webhook_secret=SECRETS["hook_secret"],
    )
    event = Event.objects.create(
        tenant=tenant,
        name="invoice.create",
        object_id="1",
        payload={"name": "invoice.create", "note": SECRETS["payload"]},
        record={"invoice": {"organization": SECRETS["record"]}},
    )
    Attempt.objects.create(
        event=event,
        action="POST /rest/api/3/issue",
        request={"fields": {"summary": SECRETS["request"]}},
        response=SECRETS["response"],
    )
    return event


def all_raw_bytes():
    """Every table's rows as the database stores them."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - table names come from introspection
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, memoryview):
                        value = value.tobytes()
                    chunks.append(value if isinstance(value, bytes) else str(value).encode())
    return b"\n".join(chunks)


@pytest.mark.django_db
def test_no_secret_or_payload_is_stored_in_plaintext(secret_rows):
    raw = all_raw_bytes()
    for name, value in SECRETS.items():
        assert value.encode() not in raw, f"{name} stored in clear"
    # ...and they all read back through the models.
    event = Event.objects.get(pk=secret_rows.pk)
    assert event.payload["note"] == SECRETS["payload"]
    assert JiraSite.objects.get().webhook_secret == SECRETS["hook_secret"]
    # The operators' filter fields stay in clear.
    assert b"invoice.create" in raw and b"6BApk" in raw


@pytest.mark.django_db
def test_rotate_keys_re_encrypts_everything_with_the_new_key(secret_rows, settings):
    old, new = settings.FERNET_KEYS[0], new_key()  # secret_rows were written with the current key
    event = Event.objects.create(name="x", payload={"v": SECRETS["payload"]})
    with override_settings(FERNET_KEYS=[new, old]):
        call_command("rotate_keys", "--batch-size", "2")
        call_command("rotate_keys")  # safe to re-run
    with override_settings(FERNET_KEYS=[new]):
        assert Event.objects.get(pk=event.pk).payload == {"v": SECRETS["payload"]}
        assert FreshBooksAccount.objects.get().refresh_token == SECRETS["fb_refresh"]
        assert FreshBooksWebhook.objects.get().verifier == SECRETS["verifier"]
        site = JiraSite.objects.get()
        assert (site.api_token, site.webhook_secret) == (SECRETS["api_token"], SECRETS["hook_secret"])
        assert Attempt.objects.get().response == SECRETS["response"]


@pytest.mark.django_db
def test_rotate_keys_reports_rows_no_key_can_read(tenant):
    from django.core.management.base import CommandError

    with override_settings(FERNET_KEYS=[new_key()]):
        Event.objects.create(name="lost", payload={"a": 1})
    with (
        override_settings(FERNET_KEYS=[new_key()]),
        pytest.raises(CommandError, match="could not be decrypted"),
    ):
        call_command("rotate_keys")


def admin_urls():
    from django.contrib import admin

    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        yield f"admin:{info[0]}_{info[1]}_changelist", model, model_admin


@pytest.mark.django_db
def test_every_admin_changelist_and_add_page_loads_for_staff(staff_client, rf, staff_user, secret_rows):
    checked = 0
    for name, _model, model_admin in admin_urls():
        response = staff_client.get(reverse(name))
        assert response.status_code == 200, name
        request = rf.get("/")
        request.user = staff_user
        if model_admin.has_add_permission(request):
            add = staff_client.get(reverse(name.replace("_changelist", "_add")))
            assert add.status_code == 200, name
        checked += 1
    assert checked >= 9


@pytest.mark.django_db
def test_admin_never_shows_a_secret(staff_client, secret_rows):
    site = JiraSite.objects.get()
    account = FreshBooksAccount.objects.get()
    pages = [
        reverse("admin:tenants_jirasite_change", args=[site.pk]),
        reverse("admin:tenants_freshbooksaccount_change", args=[account.pk]),
        reverse("admin:tenants_freshbookswebhook_change", args=[FreshBooksWebhook.objects.get().pk]),
        reverse("admin:tenants_jirasite_changelist"),
    ]
    for url in pages:
        html = staff_client.get(url).content.decode()
        for value in (
            SECRETS["api_token"],
            SECRETS["fb_access"],
            SECRETS["verifier"],
            SECRETS["hook_secret"],
        ):
            assert value not in html, url
    assert "(set)" in staff_client.get(pages[0]).content.decode()


@pytest.mark.django_db
def test_blank_secret_keeps_stored_value_and_text_replaces_it(staff_client, secret_rows):
    site = JiraSite.objects.get()
    url = reverse("admin:tenants_jirasite_change", args=[site.pk])
    form = {
        "tenant": site.tenant_id,
        "base_url": site.base_url,
        "deployment": "cloud",
        "auth_method": "basic",
        "email": "ops@example.com",
        "status": "connected",
        "api_token": "",
        "access_token": "",
        "refresh_token": "",
        "webhook_secret": "",
        "scopes": "",
        "last_error": "",
        "site_name": "",
        "cloud_id": "",
    }
    assert staff_client.post(url, form).status_code == 302
    assert JiraSite.objects.get().api_token == SECRETS["api_token"]
    # A new token is checked against Jira before it is saved (no Jira here): saved without checking.
    replaced = {**form, "api_token": "replaced-token", "_skip_check": "Save without checking"}
    assert staff_client.post(url, replaced).status_code == 302
    site = JiraSite.objects.get()
    assert site.api_token == "replaced-token" and site.refresh_token == SECRETS["jira_refresh"]


@pytest.mark.django_db
def test_anonymous_user_is_sent_to_login(client):
    names = [name for name, _model, _admin in admin_urls()]
    # Every model the design names has an admin page here, so the loop below cannot pass over nothing.
    for model in (
        "tenants_tenant",
        "tenants_jirasite",
        "connector_issuemapping",
        "connector_link",
        "audit_event",
    ):
        assert f"admin:{model}_changelist" in names, model
    for name in names:
        response = client.get(reverse(name))
        assert response.status_code == 302 and "/admin/login/" in response["Location"], name


@pytest.mark.django_db
def test_healthz_reports_database_and_queue(client, tenant):
    Event.objects.create(tenant=tenant, name="invoice.create", status=Event.Status.QUEUED)
    response = client.get("/healthz/")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok"
    assert body["queue"]["queued_events"] == 1
    assert body["queue"]["oldest_queued_age_seconds"] >= 0


@pytest.mark.django_db
def test_healthz_is_503_when_the_database_is_unreachable(client, monkeypatch):
    from django.db import OperationalError

    def broken(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", broken)
    response = client.get("/healthz/")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable" and response.json()["status"] == "down"


@pytest.mark.django_db
def test_healthz_reports_degraded_distinctly_from_down(client, tenant):
    from datetime import timedelta

    from django.utils import timezone

    from tenants.models import ConnectionStatus, JiraSite

    assert client.get("/healthz/").json()["status"] == "ok"
    JiraSite.objects.create(
        tenant=tenant, base_url="https://acme.atlassian.net", status=ConnectionStatus.NEEDS_RECONNECT
    )
    Event.objects.create(tenant=tenant, name="invoice.create", status=Event.Status.FAILED)
    stale = Event.objects.create(tenant=tenant, name="bill.create", status=Event.Status.QUEUED)
    Event.objects.filter(pk=stale.pk).update(received_at=timezone.now() - timedelta(minutes=10))

    response = client.get("/healthz/")
    assert response.status_code == 200, "degraded is still up: only an unreachable database is down (503)"
    body = response.json()
    assert body["status"] == "degraded"
    assert body["reasons"][0] == "1 Jira connection(s) need a reconnect"
    assert "1 event(s) failed in the last hour" in body["reasons"]
    assert any(reason.startswith("the oldest queued event has waited 6") for reason in body["reasons"])


def run_manage(*args, env_overrides):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SECRET_KEY", "FERNET_KEYS", "DEBUG", "DJANGO_SETTINGS_MODULE")
    }
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("missing", ["SECRET_KEY", "FERNET_KEYS"])
def test_production_start_up_without_secrets_fails_with_one_clear_line(missing, tmp_path):
    env = {
        "DEBUG": "0",
        "SECRET_KEY": "s" * 50,
        "FERNET_KEYS": new_key(),
        "DATABASE_URL": f"sqlite:///{tmp_path}/x",
    }
    env.pop(missing)
    result = run_manage("check", env_overrides=env)
    assert result.returncode != 0
    assert f"{missing} must be set when DEBUG is off" in result.stderr
    assert "Traceback" not in result.stderr


def test_gunicorn_start_up_without_secrets_fails_clearly(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SECRET_KEY", "FERNET_KEYS", "DJANGO_SETTINGS_MODULE")
    }
    env.update({"DEBUG": "0", "DATABASE_URL": f"sqlite:///{tmp_path}/x"})
    result = subprocess.run(
        [sys.executable, "-c", "import config.wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY and FERNET_KEYS must be set" in result.stderr and "Traceback" not in result.stderr


def test_debug_mode_allows_development_defaults_with_a_warning(tmp_path):
    result = run_manage("check", env_overrides={"DEBUG": "1", "DATABASE_URL": f"sqlite:///{tmp_path}/x"})
    assert result.returncode == 0, result.stderr
    assert "insecure development defaults" in result.stderr
