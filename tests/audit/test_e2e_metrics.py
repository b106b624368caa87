"""/metrics across processes: signed deliveries go through a real gunicorn (2 workers), a real qcluster
(2 workers) processes them against the loopback fakes, and every scrape — whichever gunicorn worker answers —
shows the sum of all processes' counters (prometheus_client multiprocess mode on a shared directory).

PostgreSQL only, like tests/test_e2e_cluster.py (the SQLite test database lives in memory)."""

import socket
import sys
import time

import pytest
import requests
from django.db import connection
from django_q.models import Schedule

from audit.models import Event
from tenants.models import FreshBooksAccount, FreshBooksWebhook
from tests.fakes.freshbooks_callbacks import delivery_fields, signed_delivery
from tests.fakes.freshbooks_records import get, put
from tests.metrics_helpers import histogram_count, parse, value
from tests.processes import environment, start, stop

WAIT_SECONDS = 90
VERIFIER = "e2e-metrics-verifier"
INVOICES = ("987654", "987655", "987656", "987657")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the SQLite test database lives in memory, invisible to gunicorn and qcluster subprocesses",
    ),
]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def processes(fb, jira, tmp_path):
    """gunicorn (2 workers) and qcluster (2 workers) on the test database, sharing one metrics directory."""
    Schedule.objects.all().delete()  # only what the deliveries enqueue runs
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    port = free_port()
    env = environment(fb.url, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), Q_WORKERS="2")
    web = start(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
        env,
        tmp_path / "gunicorn.log",
    )
    worker = start([sys.executable, "manage.py", "qcluster"], env, tmp_path / "qcluster.log")
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            assert web[0].poll() is None, "gunicorn exited early"
            try:
                if requests.get(f"{base}/healthz/", timeout=2).ok:
                    break
            except requests.RequestException:  # not listening yet, or busy starting
                pass
            assert time.monotonic() < deadline, "gunicorn did not come up"
            time.sleep(0.2)
        yield base, worker[0], metrics_dir
    finally:
        stop(*worker, tmp_path / "qcluster.log")
        stop(*web, tmp_path / "gunicorn.log")


def scrape(base):
    response = requests.get(f"{base}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return parse(response.text)


@pytest.mark.django_db(transaction=True)
def test_metrics_add_up_deliveries_from_gunicorn_workers_and_processing_in_qcluster(connected, fb, processes):
    base, worker, metrics_dir = processes
    account = FreshBooksAccount.objects.get(tenant=connected)
    FreshBooksWebhook.objects.create(
        account=account, callback_id=9, event="invoice.create", uri="https://x.test/", verifier=VERIFIER,
        verified=True,
    )  # fmt: skip
    sample = get(fb, "invoice", INVOICES[0])
    for number, object_id in enumerate(INVOICES[1:], start=3):
        put(fb, "invoice", {**sample, "id": int(object_id), "invoiceid": int(object_id),
                            "invoice_number": f"ACM000{number}"})  # fmt: skip

    url = f"{base}/webhooks/freshbooks/"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for object_id in INVOICES:
        body, headers = signed_delivery(
            delivery_fields("invoice.create", object_id, business_id="6543"), VERIFIER
        )
        assert requests.post(url, data=body, headers={**form, **headers}, timeout=10).status_code == 200
    for _ in range(2):
        body, headers = signed_delivery(delivery_fields("invoice.create", "1"), "not-the-verifier")
        assert requests.post(url, data=body, headers={**form, **headers}, timeout=10).status_code == 401

    deadline = time.monotonic() + WAIT_SECONDS
    while Event.objects.exclude(status__in=("succeeded", "failed", "skipped")).exists():
        assert worker.poll() is None, "qcluster exited early"
        assert time.monotonic() < deadline, list(Event.objects.values_list("status", "status_detail"))
        time.sleep(0.25)
    assert sorted(Event.objects.values_list("status", flat=True)) == ["succeeded"] * len(INVOICES), list(
        Event.objects.values_list("status", "status_detail")
    )

    # Several scrapes, answered by either gunicorn worker, all give the sum over every process.
    scrapes = [scrape(base) for _ in range(6)]
    for samples in scrapes:
        accepted = value(samples, "mlc_deliveries_total", source="freshbooks", result="accepted", reason="ok")
        rejected = value(
            samples, "mlc_deliveries_total", source="freshbooks", result="rejected", reason="signature"
        )
        assert (accepted, rejected) == (len(INVOICES), 2)
        assert value(samples, "mlc_events_total", kind="invoice", status="succeeded") == len(INVOICES)
        assert value(samples, "mlc_vendor_calls_total", vendor="jira", status="201") >= len(INVOICES)
        assert value(samples, "mlc_vendor_calls_total", vendor="freshbooks", status="200") >= len(INVOICES)
        assert histogram_count(samples, "mlc_delivery_to_jira_write_seconds") == len(INVOICES)
        assert value(samples, "mlc_delivery_to_jira_write_seconds_bucket", le="+Inf") == len(INVOICES)
        assert value(samples, "mlc_queue_backlog") == 0
    # Through a proxy on this host (X-Forwarded-For), the same loopback caller is refused.
    proxied = requests.get(f"{base}/metrics", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10)
    assert proxied.status_code == 403 and "mlc_" not in proxied.text
    # The counts came from several processes: 2 gunicorn workers and the qcluster's processes wrote files.
    pids = {path.stem.rsplit("_", 1)[-1] for path in metrics_dir.glob("*.db")}
    assert len(pids) >= 3, sorted(path.name for path in metrics_dir.iterdir())
