"""A caller who declares a large body and then stalls cannot hold the web workers (the Procfile's gunicorn, two
sync workers): /healthz/ keeps answering. Before the webhook views checked their sender from the headers,
two such connections to the Jira webhook URLs held both workers until gunicorn's worker timeout (30 s)."""

import socket
import time

import pytest
import requests

from tenants.models import ConnectionStatus, JiraSite
from tests.e2e.conftest import database_url
from tests.e2e.processes import HOST, free_port, start_web

BODY_TIMEOUT = 2  # WEBHOOK_BODY_TIMEOUT of the web under test, seconds
SITE_UUID = "3f1e5c1a-9a7b-4c1e-8f00-2b6f0c9d4e11"


@pytest.fixture
def web(tmp_path, tenant):
    import os

    JiraSite.objects.create(
        tenant=tenant,
        uuid=SITE_UUID,
        base_url="https://acme.atlassian.net",
        email="ops@acme.test",
        api_token="t",
        status=ConnectionStatus.CONNECTED,
        webhook_secret="hook-secret-0123456789",
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "DEBUG": "0",
        "CONN_MAX_AGE": "0",
        "WEBHOOK_BODY_TIMEOUT": str(BODY_TIMEOUT),
    }
    port = free_port()
    process = start_web(env, tmp_path / "web.log", port, workers=2)
    yield port
    process.stop()


def stalled(port, path, content_type, declared, headers=""):
    """A connection that sends the headers of a `declared`-byte body, a few bytes of it, then nothing."""
    connection = socket.create_connection((HOST, port), timeout=30)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {declared}\r\n{headers}\r\n"
    )
    connection.sendall(head.encode() + b'{"webhookEvent": "jira:issue_deleted", "issue": {"fields": {"descr')
    return connection


def healthz_seconds(port):
    session = requests.Session()
    session.trust_env = False
    started = time.monotonic()
    try:
        response = session.get(f"http://{HOST}:{port}/healthz/", timeout=20)
    except requests.Timeout:
        return float("inf")
    assert response.status_code == 200, response.text
    return time.monotonic() - started


def status_line(connection):
    try:
        return connection.recv(200).split(b"\r\n", 1)[0].decode()
    except OSError:
        return ""
    finally:
        connection.close()


def test_stalled_20_mb_bodies_to_the_jira_urls_do_not_hold_the_workers(web):
    twenty_mb = 20 * 1024 * 1024
    stalls = [
        stalled(
            web, "/webhooks/jira/", "application/json", twenty_mb, "Authorization: Bearer forged.jwt.x\r\n"
        ),
        stalled(web, f"/webhooks/jira/{SITE_UUID}/", "application/json", twenty_mb),  # no X-Hub-Signature
    ]
    time.sleep(0.5)  # both accepted by the two workers

    took = healthz_seconds(web)

    assert took < 5, f"/healthz/ took {took:.1f} s while two stalled Jira deliveries were open"
    assert [status_line(c) for c in stalls] == ["HTTP/1.1 401 Unauthorized"] * 2, "refused before the body"


def test_a_stalled_body_that_must_be_read_ends_after_the_body_timeout(web):
    """The FreshBooks signature covers the body, as the admin webhook's does: those bodies are read, and a
    sender that stops sending is answered 408 after WEBHOOK_BODY_TIMEOUT."""
    stalls = [
        stalled(web, "/webhooks/freshbooks/", "application/x-www-form-urlencoded", 60_000),
        stalled(
            web,
            f"/webhooks/jira/{SITE_UUID}/",
            "application/json",
            1_000_000,
            "X-Hub-Signature: sha256=0\r\n",
        ),
    ]
    time.sleep(0.5)

    took = healthz_seconds(web)

    assert took < BODY_TIMEOUT + 5, f"/healthz/ took {took:.1f} s while two stalled deliveries were open"
    assert [status_line(c) for c in stalls] == ["HTTP/1.1 408 Request Timeout"] * 2
