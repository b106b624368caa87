"""GET /metrics: who may read it, and that its counters, histogram and queue gauges follow what happens.

The multi-process case (gunicorn workers + qcluster) is tests/test_e2e_metrics.py."""

import pytest

from audit.models import Event
from connector.sandbox.freshbooks_callbacks import delivery_fields, signed_delivery
from tenants.models import FreshBooksAccount, FreshBooksWebhook
from tests.metrics_helpers import histogram_count, moved, parse, value
from tests.processing import run_queued

URL = "/metrics"
VERIFIER = "metrics-test-verifier"
FORM = "application/x-www-form-urlencoded"
TOKEN = "scrape-token-0123456789"
LATENCY = "mlc_delivery_to_jira_write_seconds"


def scrape(client, **extra):
    response = client.get(URL, **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return parse(response.content.decode())


@pytest.mark.django_db
@pytest.mark.parametrize(
    "remote, headers",
    [
        ("203.0.113.9", {}),  # another host
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.9"}),  # a proxy on this host forwarding someone
        ("127.0.0.1", {"Forwarded": "for=203.0.113.9"}),
        ("203.0.113.9", {"Authorization": "Bearer wrong-token"}),
        ("not-an-address", {}),
    ],
)
def test_metrics_are_refused_to_others(client, settings, remote, headers):
    settings.METRICS_BEARER_TOKEN = TOKEN
    response = client.get(URL, REMOTE_ADDR=remote, headers=headers)
    assert response.status_code == 403
    assert b"mlc_" not in response.content


@pytest.mark.django_db
def test_metrics_open_to_loopback_then_to_named_addresses_and_the_token(client, settings):
    assert client.get(URL, REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get(URL, REMOTE_ADDR="::1").status_code == 200
    settings.METRICS_ALLOW_LOOPBACK = False
    assert client.get(URL, REMOTE_ADDR="127.0.0.1").status_code == 403

    import ipaddress

    settings.METRICS_ALLOWED_IPS = [ipaddress.ip_network("10.1.0.0/16")]
    assert client.get(URL, REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get(URL, REMOTE_ADDR="10.2.0.1").status_code == 403
    settings.METRICS_BEARER_TOKEN = TOKEN
    ok = client.get(URL, REMOTE_ADDR="198.51.100.7", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    assert b"mlc_queue_backlog" in ok.content
    # No token configured: an empty bearer never matches.
    settings.METRICS_BEARER_TOKEN = ""
    assert (
        client.get(URL, REMOTE_ADDR="198.51.100.7", headers={"Authorization": "Bearer "}).status_code == 403
    )


@pytest.mark.django_db
def test_metrics_answers_get_only(client):
    assert client.post(URL).status_code == 405


@pytest.fixture
def hooked(connected):
    account = FreshBooksAccount.objects.get(tenant=connected)
    FreshBooksWebhook.objects.create(
        account=account, callback_id=5, event="invoice.create", uri="https://x.test/", verifier=VERIFIER,
        verified=True,
    )  # fmt: skip
    return connected


def deliver(client, fields, verifier=VERIFIER):
    body, headers = signed_delivery(fields, verifier)
    return client.post("/webhooks/freshbooks/", data=body, content_type=FORM, headers=headers)


@pytest.mark.django_db
def test_counters_histogram_and_queue_gauges_follow_deliveries_and_processing(client, hooked, jira):
    before = scrape(client)
    fields = delivery_fields(
        "invoice.create", "987654", business_id=hooked.freshbooks_accounts.get().business_id
    )
    assert deliver(client, fields).status_code == 200
    assert deliver(client, fields).json()["status"] == "replay"  # the same delivery again: no new event
    again = {**fields, "user_id": "2"}  # another delivery for the same object, still queued
    assert deliver(client, again).json()["status"] == "duplicate"
    assert deliver(client, fields, verifier="wrong").status_code == 401
    assert client.post("/webhooks/freshbooks/", data=b"%zz", content_type=FORM).status_code == 400
    assert (
        client.post("/webhooks/freshbooks/", data=b"{}", content_type="application/json").status_code == 415
    )

    queued = scrape(client)
    accepted = dict(source="freshbooks", result="accepted", reason="ok")
    assert moved(before, queued, "mlc_deliveries_total", **accepted) == 3
    for reason in ("signature", "malformed", "media_type"):
        assert (
            moved(
                before, queued, "mlc_deliveries_total", source="freshbooks", result="rejected", reason=reason
            )
            == 1
        )
    assert moved(before, queued, "mlc_events_total", kind="invoice", status="duplicate") == 1
    assert value(queued, "mlc_queue_backlog") == 1
    assert value(queued, "mlc_queue_oldest_age_seconds") >= 0
    assert histogram_count(queued, LATENCY) == histogram_count(before, LATENCY)

    assert run_queued("connector.tasks.process_event") == ["succeeded"]
    after = scrape(client)
    assert moved(before, after, "mlc_events_total", kind="invoice", status="succeeded") == 1
    assert moved(before, after, "mlc_vendor_calls_total", vendor="freshbooks", status="200") >= 1
    assert moved(before, after, "mlc_vendor_calls_total", vendor="jira", status="201") >= 1
    assert histogram_count(after, LATENCY) - histogram_count(before, LATENCY) == 1  # first Jira write only
    assert value(after, "mlc_queue_backlog") == 0
    assert value(after, "mlc_queue_oldest_age_seconds") == 0
    event = Event.objects.filter(status="succeeded").get()
    assert event.jira_key


@pytest.mark.django_db
def test_jira_deliveries_are_counted_by_reason(client):
    before = scrape(client)
    unknown_site = "/webhooks/jira/00000000-0000-0000-0000-000000000000/"
    assert client.post(unknown_site, data=b"{}", content_type="application/json").status_code == 401
    assert client.get(unknown_site).status_code == 405
    after = scrape(client)
    rejected = dict(source="jira", result="rejected")
    assert moved(before, after, "mlc_deliveries_total", **rejected, reason="signature") == 1
    assert moved(before, after, "mlc_deliveries_total", **rejected, reason="method") == 1
