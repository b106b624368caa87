"""Alerts: counted per tenant, kind and hour, mailed to ADMINS once, never with a secret or a payload; the
per-tenant health panel on the admin index."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection, connections
from django.db.models import F
from django.utils import timezone

from audit.alerts import raise_alert
from audit.models import Alert, Event
from connector.jira import registration
from connector.sandbox.freshbooks import ACCESS_TOKEN
from connector.sandbox.jira import API_TOKEN
from connector.tasks import process_event
from tenants import tokens
from tenants.models import ConnectionStatus, FreshBooksAccount, FreshBooksWebhook, JiraSite, Tenant
from tests.processing import make_event, run_queued

ADMINS = [("Ops", "ops@example.com")]
PAYLOAD_MARKER = "payload-only-text-7f3a"
JIRA_ERROR = "customer-data-in-jira-error-91c2"


@pytest.fixture(autouse=True)
def admins(settings):
    settings.ADMINS = ADMINS


def sent(mailoutbox):
    """The mails sent once the queued alert-mail tasks ran (a worker sends them, audit.tasks.mail_alert)."""
    run_queued("audit.tasks.mail_alert")
    return mailoutbox


def fail_next_issue_create(jira):
    body = {"errorMessages": [JIRA_ERROR], "errors": {}}
    jira.state.setdefault("fail_next", []).append(
        {"method": "POST", "path": r"/rest/api/3/issue$", "status": 400, "body": body}
    )


def failing_event(connected, jira, name, object_id):
    """Process an event whose Jira create is refused (400); returns the failed event."""
    fail_next_issue_create(jira)
    event = make_event(connected, name, object_id)
    event.payload = {**event.payload, "note": PAYLOAD_MARKER}
    event.save(update_fields=["payload"])
    with_commit = process_event(event.pk)
    assert with_commit == "failed"
    event.refresh_from_db()
    assert JIRA_ERROR in event.status_detail  # the reason is on the event, not in the mail
    return event


def secrets_of(tenant):
    account = FreshBooksAccount.objects.get(tenant=tenant)
    site = JiraSite.objects.get(tenant=tenant)
    return [ACCESS_TOKEN, API_TOKEN, account.refresh_token, site.api_token, PAYLOAD_MARKER, JIRA_ERROR]


def assert_clean(mail, forbidden):
    text = f"{mail.subject}\n{mail.body}"
    for secret in forbidden:
        assert secret not in text, f"{secret!r} leaked into the alert mail"


@pytest.mark.django_db(transaction=True)
def test_first_failure_of_a_kind_per_tenant_per_hour_mails_once(connected, fb, jira, mailoutbox):
    invoices = [failing_event(connected, jira, "invoice.create", 987654) for _ in range(3)]
    bill = failing_event(connected, jira, "bill.create", fb.samples["bill"]["id"])

    assert [m.to for m in sent(mailoutbox)] == [["ops@example.com"]] * 2  # one per kind, not one per failure
    first, second = mailoutbox
    assert "acme" in first.subject and "invoice" in first.subject
    assert f"#{invoices[0].pk}" in first.body and f"/admin/audit/event/{invoices[0].pk}/change/" in first.body
    assert "bill" in second.subject and f"#{bill.pk}" in second.body
    for mail in mailoutbox:
        assert_clean(mail, secrets_of(connected))
    counted = Alert.objects.get(tenant=connected, kind=Alert.Kind.EVENT_FAILED, subject="invoice")
    assert (counted.occurrences, counted.mailed) == (3, True)

    # Another tenant's failure of the same kind is its own alert.
    other = Tenant.objects.create(name="Beta Ltd", slug="beta")
    Event.objects.create(tenant=other, name="invoice.create", object_id="1", status="queued")
    assert process_event(Event.objects.get(tenant=other).pk) == "failed"  # no connections
    assert len(sent(mailoutbox)) == 3 and "beta" in mailoutbox[2].subject

    # An hour later, the next invoice failure mails again.
    Alert.objects.update(hour=F("hour") - timedelta(hours=1))
    failing_event(connected, jira, "invoice.create", 987654)
    assert len(sent(mailoutbox)) == 4 and "invoice" in mailoutbox[3].subject


@pytest.mark.django_db(transaction=True)
def test_without_admins_alerts_are_counted_not_mailed(connected, fb, jira, mailoutbox, settings):
    settings.ADMINS = []
    failing_event(connected, jira, "invoice.create", 987654)
    assert sent(mailoutbox) == []
    assert Alert.objects.get().mailed is False


@pytest.mark.django_db(transaction=True)
def test_connection_needing_reconnect_mails_once_without_tokens(tenant, fb_auth, mailoutbox, settings):
    account = FreshBooksAccount.objects.create(
        tenant=tenant, account_id="6BApk", business_id="6543", access_token="old-access-secret",
        refresh_token="dead-refresh-secret", token_expires_at=timezone.now() - timedelta(minutes=1),
        status=ConnectionStatus.CONNECTED,
    )  # fmt: skip
    for _ in range(3):
        with pytest.raises(tokens.ReconnectRequired):
            tokens.access_token(account)

    assert len(sent(mailoutbox)) == 1
    mail = mailoutbox[0]
    assert "needs reconnect" in mail.subject.lower() and "acme" in mail.subject
    assert_clean(mail, ["old-access-secret", "dead-refresh-secret", settings.FRESHBOOKS_CLIENT_SECRET])
    assert Alert.objects.get(kind=Alert.Kind.NEEDS_RECONNECT).occurrences == 1


@pytest.mark.django_db(transaction=True)
def test_lapsed_jira_webhook_mails_once_per_lapse(tenant, settings, mailoutbox, fake_server):
    gone = fake_server("atlassian-down")
    gone.close()  # refreshing the webhooks fails: nothing listens there
    settings.ATLASSIAN_API_URL = settings.ATLASSIAN_AUTH_URL = gone.url
    expired = timezone.now() - timedelta(hours=2)
    site = JiraSite.objects.create(
        tenant=tenant, base_url="https://acme.atlassian.net", cloud_id="cloud-1",
        auth_method=JiraSite.AuthMethod.OAUTH2, access_token="oauth-access-secret",
        refresh_token="oauth-refresh-secret", token_expires_at=timezone.now() + timedelta(hours=1),
        status=ConnectionStatus.CONNECTED, webhook_ids=[1], webhook_expires_at=expired,
        webhook_secret="webhook-secret-value",
    )  # fmt: skip

    registration.refresh_all()
    registration.refresh_all()
    Alert.objects.update(hour=F("hour") - timedelta(hours=1))
    registration.refresh_all()  # still the same lapse, an hour later: counted, not mailed again

    site.refresh_from_db()
    assert site.webhook_error and site.webhook_expires_at == expired
    assert len(sent(mailoutbox)) == 1
    assert "lapsed" in mailoutbox[0].subject.lower()
    assert_clean(mailoutbox[0], ["oauth-access-secret", "oauth-refresh-secret", "webhook-secret-value"])
    assert sum(Alert.objects.values_list("occurrences", flat=True)) == 3

    # A new lapse (renewed, then expired again) mails again.
    JiraSite.objects.filter(pk=site.pk).update(webhook_expires_at=timezone.now() - timedelta(minutes=5))
    registration.refresh_all()
    assert len(sent(mailoutbox)) == 2


@pytest.mark.django_db
def test_admin_index_shows_each_tenant_health(client, django_user_model, connected):
    other = Tenant.objects.create(name="Beta Ltd", slug="beta")
    make_event(connected, "invoice.create", 1, status="failed")
    make_event(connected, "invoice.create", 2, status="failed")
    old = make_event(connected, "invoice.create", 3, status="failed")
    Event.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(days=2))
    queued = make_event(connected, "invoice.create", 4, status="queued")
    Event.objects.filter(pk=queued.pk).update(received_at=timezone.now() - timedelta(minutes=30))
    FreshBooksAccount.objects.filter(tenant=connected).update(status=ConnectionStatus.NEEDS_RECONNECT)
    JiraSite.objects.filter(tenant=connected).update(webhook_expires_at=timezone.now() - timedelta(days=1))
    account = FreshBooksAccount.objects.get(tenant=connected)
    FreshBooksWebhook.objects.create(
        account=account, callback_id=1, event="invoice.create", uri="https://x.test/"
    )

    operator = django_user_model.objects.create_user("viewer", password="pw-123456789", is_staff=True)
    operator.user_permissions.add(Permission.objects.get(codename="view_event"))
    client.force_login(operator)
    page = client.get("/admin/").content.decode()
    assert 'id="tenant-health"' in page
    acme = page.split('data-tenant="acme"')[1].split("</tr>")[0]
    assert '<td class="failed"><a' in acme and ">2</a>" in acme  # 24 h only
    assert "FreshBooks" in acme.split('class="reconnect">')[1].split("</td>")[0]
    assert "lapsed" in acme.split('class="jira-webhooks">')[1].split("</td>")[0]
    assert acme.split('class="callbacks">')[1].split("</td>")[0] == "1"
    assert acme.split('class="oldest-queued">')[1].split("</td>")[0] == "30 min"
    beta = page.split(f'data-tenant="{other.slug}"')[1].split("</tr>")[0]
    assert 'class="failed">0' in beta and 'class="oldest-queued">—' in beta


@pytest.mark.django_db
def test_admin_index_hides_the_panel_without_audit_view_permission(client, django_user_model, tenant):
    operator = django_user_model.objects.create_user("plain", password="pw-123456789", is_staff=True)
    client.force_login(operator)
    page = client.get("/admin/").content.decode()
    assert client.get("/admin/").status_code == 200
    assert 'id="tenant-health"' not in page


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
def test_concurrent_failures_in_several_workers_mail_once(tenant, mailoutbox):
    start = threading.Barrier(8)

    def fail(_):
        start.wait()
        try:
            return raise_alert(tenant, Alert.Kind.EVENT_FAILED, "invoice", "Event #1 failed.")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(8) as pool:
        mailed = list(pool.map(fail, range(8)))

    assert mailed.count(True) == 1
    assert len(sent(mailoutbox)) == 1
    assert Alert.objects.get().occurrences == 8
