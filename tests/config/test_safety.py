"""Operational safety (issue 23 point 5): Django's error mails, alert mails from their own task with a timeout,
/healthz/ in generic words, /metrics behind proxies."""

import logging
import socket
import sys
import threading
import time

import pytest
from django.core import mail
from django.db import OperationalError, connection, transaction
from django.test import RequestFactory

from audit import alerts
from audit.models import Alert
from tests.processing import queued, run_queued

REDIS_PASSWORD = "redis-pass-4b1d"
DB_DETAIL = 'connection to server at "db.internal" (10.0.0.5), port 5432 failed: FATAL: role "connector_rw"'


@pytest.fixture
def admins(settings):
    settings.ADMINS = [("Ops", "ops@example.com")]
    settings.REDIS_URL = f"redis://:{REDIS_PASSWORD}@redis.internal:6379/0"
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "redis": settings.REDIS_URL}


@pytest.mark.django_db
def test_unauthenticated_bad_requests_send_no_error_mails(client, settings, admins, caplog):
    settings.ALLOWED_HOSTS = ["connector.example.test"]
    for _ in range(11):  # a foreign Host header
        assert client.get("/admin/login/", HTTP_HOST="evil.example").status_code == 400
    big = {"username": "x", "password": "y" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)}
    for _ in range(10):  # an oversized form
        response = client.post("/admin/login/", big, HTTP_HOST="connector.example.test")
        assert response.status_code == 400
    assert mail.outbox == []
    # Still logged, for the operator's log reader.
    assert any(r.name == "django.security.DisallowedHost" for r in caplog.records)
    assert any(r.name == "django.security.RequestDataTooBig" for r in caplog.records)


def test_error_mails_when_turned_on_are_throttled_and_scrubbed(settings, admins):
    from config.errors import ThrottledErrorMailHandler

    settings.ERROR_MAIL_INTERVAL = 600
    ThrottledErrorMailHandler._last_sent = None
    handler = ThrottledErrorMailHandler()
    request = RequestFactory().get("/admin/", HTTP_AUTHORIZATION="Bearer api-token-secret")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        exc_info = sys.exc_info()
    for status in (404, 500, 500, 502):
        record = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "Error", (), exc_info)
        record.request, record.status_code = request, status
        handler.emit(record)
    assert len(mail.outbox) == 1  # the 404 never mails; the 500s after the first wait for the interval
    body = mail.outbox[0].body
    assert "RuntimeError" in body and "REDIS_URL" in body
    assert REDIS_PASSWORD not in body and "api-token-secret" not in body


@pytest.fixture
def silent_smtp():
    """A mail server that accepts connections and never answers (no greeting)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


@pytest.mark.django_db(transaction=True)
def test_alert_mail_is_its_own_task_and_a_silent_mail_server_times_out(
    tenant, settings, admins, silent_smtp, caplog
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", silent_smtp, 1
    done = threading.Event()

    def worker_fails_an_event():
        with transaction.atomic():
            alerts.raise_alert(tenant, Alert.Kind.EVENT_FAILED, "invoice", "Event #1 failed.")
        done.set()

    worker = threading.Thread(target=worker_fails_an_event, daemon=True)
    worker.start()
    assert done.wait(10), "the worker that failed an event is stuck sending the alert mail"
    assert [func for func, _ in queued()] == ["audit.tasks.mail_alert"]

    started = time.monotonic()
    assert run_queued("audit.tasks.mail_alert") == ["failed"]
    assert time.monotonic() - started < 8  # EMAIL_TIMEOUT bounds the wait
    assert Alert.objects.get().mailed is False
    assert "Could not mail the alert" in caplog.text


@pytest.mark.django_db
def test_healthz_answers_in_generic_words_and_logs_the_detail(client, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise OperationalError(DB_DETAIL)

    with monkeypatch.context() as patch:
        patch.setattr(connection, "cursor", broken)
        response = client.get("/healthz/")
    assert response.status_code == 503
    assert response.json() == {"status": "down", "database": "unreachable"}
    assert DB_DETAIL in caplog.text

    class DownBroker:
        def queue_size(self):
            raise ConnectionError(f"Error connecting to redis://:{REDIS_PASSWORD}@redis.internal:6379")

    monkeypatch.setattr("config.views.get_broker", DownBroker)
    body = client.get("/healthz/").content.decode()
    assert "the task broker is unreachable" in body
    assert "redis.internal" not in body and REDIS_PASSWORD not in body
    assert "redis.internal" in caplog.text


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    [
        {"X-Forwarded-Proto": "https"},
        {"X-Forwarded-Host": "connector.example.com"},
        {"Via": "1.1 proxy.internal"},
        {"Forwarded": "proto=https"},
    ],
)
def test_metrics_any_forwarding_header_counts_as_forwarded(client, header):
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", headers=header).status_code == 403


@pytest.mark.django_db
def test_metrics_allow_list_applies_to_the_real_client_behind_trusted_proxies_only(client, settings):
    import ipaddress

    settings.METRICS_ALLOWED_IPS = [ipaddress.ip_network("10.0.0.0/8")]
    proxy = "10.0.0.2"  # the reverse proxy, itself inside the allowed network
    outsider = {"X-Forwarded-For": "203.0.113.9"}
    insider = {"X-Forwarded-For": "10.1.2.3"}
    # No trusted proxies: a forwarded request is nobody's, whatever the proxy's own address.
    assert client.get("/metrics", REMOTE_ADDR=proxy, headers=outsider).status_code == 403
    assert client.get("/metrics", REMOTE_ADDR=proxy, headers=insider).status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200  # direct, not forwarded

    settings.METRICS_TRUSTED_PROXIES = [ipaddress.ip_network(f"{proxy}/32")]
    assert client.get("/metrics", REMOTE_ADDR=proxy, headers=insider).status_code == 200
    assert client.get("/metrics", REMOTE_ADDR=proxy, headers=outsider).status_code == 403
    # A client that writes its own X-Forwarded-For: the proxy appends the real address, which decides.
    spoofed = {"X-Forwarded-For": "10.1.2.3, 203.0.113.9"}
    assert client.get("/metrics", REMOTE_ADDR=proxy, headers=spoofed).status_code == 403
    # The same headers from an untrusted peer count for nothing.
    assert client.get("/metrics", REMOTE_ADDR="10.9.9.9", headers=insider).status_code == 403
