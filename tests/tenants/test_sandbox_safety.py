"""Sandbox mode never runs against real connections and never sends a real token to a sandbox address.

Today's fault: a maintenance command run without the vendor variables (so in sandbox mode) sent a production
refresh token to a loopback port and marked the account "Needs reconnect"."""

import contextlib
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.core.management.base import SystemCheckError
from django.utils import timezone

from connector.sandbox.freshbooks import ACCOUNT_ID, BUSINESS_ID
from tenants import tokens
from tenants.models import ConnectionStatus, FreshBooksAccount, JiraSite, Tenant

REAL_REFRESH = "real-refresh-token-from-production"
TOKEN_PATH = "/auth/oauth/token"


def real_account(tenant, **extra):
    fields = {
        "account_id": ACCOUNT_ID,
        "business_id": BUSINESS_ID,
        "access_token": "real-access",
        "refresh_token": REAL_REFRESH,
        "token_expires_at": timezone.now() - timedelta(minutes=1),
        "status": ConnectionStatus.CONNECTED,
    }
    return FreshBooksAccount.objects.create(tenant=tenant, **{**fields, **extra})


def token_requests(fb_auth):
    return fb_auth.calls("POST", TOKEN_PATH)


@pytest.mark.django_db
def test_a_command_in_sandbox_mode_sends_no_real_token_and_marks_nothing(tenant, fb_auth, settings):
    settings.SANDBOX = True  # no vendor variables in this shell; FRESHBOOKS_API_URL is the sandbox's port
    account = real_account(tenant)  # connected before origins were recorded: origin unknown
    with contextlib.suppress(CommandError, SystemExit):  # it reports the failed check
        call_command("check_connections", tenant=tenant.slug)
    assert token_requests(fb_auth) == []
    account.refresh_from_db()
    assert account.status == ConnectionStatus.CONNECTED and account.refresh_token == REAL_REFRESH
    with pytest.raises(tokens.TokenRefreshError, match="sandbox mode"):
        tokens.access_token(account)


@pytest.mark.django_db
def test_tokens_go_only_to_the_token_endpoint_that_issued_them(tenant, fb_auth, settings):
    account = real_account(tenant, refresh_token="fb-refresh-token")  # the fake's valid refresh token
    tokens.access_token(account)  # refreshed at the fake: its token endpoint is now the recorded origin
    account.refresh_from_db()
    assert account.token_url == f"{fb_auth.url}{TOKEN_PATH}"
    sent = len(token_requests(fb_auth))

    FreshBooksAccount.objects.filter(pk=account.pk).update(token_expires_at=timezone.now())
    account.refresh_from_db()
    settings.FRESHBOOKS_API_URL = "http://127.0.0.1:9"  # this process now points elsewhere
    with pytest.raises(tokens.TokenRefreshError, match="not sent"):
        tokens.access_token(account)
    assert len(token_requests(fb_auth)) == sent
    account.refresh_from_db()
    assert account.status == ConnectionStatus.CONNECTED


@pytest.mark.django_db
def test_sandbox_mode_refuses_to_start_against_real_connections(tenant, fb_auth, settings):
    settings.SANDBOX = True
    call_command("check")  # nothing connected: fine
    real_account(tenant, token_url="https://api.freshbooks.com/auth/oauth/token")
    with pytest.raises(SystemCheckError, match="mlc.E001"):
        call_command("check")
    with pytest.raises(SystemCheckError, match="real connections"):
        call_command("sandbox", skip_checks=False)

    # A sandbox-issued connection is not real; a Jira API token for a real site is.
    FreshBooksAccount.objects.update(token_url=f"{fb_auth.url}{TOKEN_PATH}")
    call_command("check")
    JiraSite.objects.create(tenant=tenant, base_url="https://acme.atlassian.net", api_token="real-api-token")
    with pytest.raises(SystemCheckError, match="acme.atlassian.net"):
        call_command("check")

    settings.SANDBOX = False  # with the vendor settings, the same database is fine
    call_command("check")


@pytest.mark.django_db
def test_migration_records_the_origin_of_earlier_connections(tenant, settings):
    from importlib import import_module

    from django.apps import apps

    migration = import_module("tenants.migrations.0011_token_url_of_existing_connections")
    sandbox_made = real_account(tenant, access_token="fb-access-3", refresh_token="fb-refresh-3")
    other = Tenant.objects.create(name="Beta", slug="beta")
    production = real_account(other, business_id="999")

    settings.SANDBOX = True  # migrated in sandbox mode: only the sandbox's own tokens are recognised
    migration.record_origins(apps, None)
    sandbox_made.refresh_from_db()
    production.refresh_from_db()
    assert sandbox_made.token_url == f"{settings.FRESHBOOKS_API_URL}{TOKEN_PATH}"
    assert production.token_url == ""

    settings.SANDBOX = False  # with the vendor settings: the configured vendor issued them
    migration.record_origins(apps, None)
    production.refresh_from_db()
    assert production.token_url == f"{settings.FRESHBOOKS_API_URL}{TOKEN_PATH}"
