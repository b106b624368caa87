"""Fixtures of the end-to-end tests: the Procfile's `web` (gunicorn) and `worker` (django-q2 cluster) as real
processes on the PostgreSQL test database, with the fake FreshBooks (OAuth pages, callbacks, records) and the
fake Jira Cloud (every request validated against the OpenAPI spec) on loopback.

`stack` goes the customer's way: an operator signs in to the admin over HTTP, connects FreshBooks through the
OAuth pages, registers the webhooks (FreshBooks' callback.verify handshake is answered by the web and confirmed
by the worker), then FreshBooks' signed deliveries reach the web and the worker writes to Jira.
"""

import io
import os
import re
import threading
import time
from html import unescape

import pytest
import requests
from django.core.management import call_command
from django.db import connection

from audit.models import Event
from connector.defaults import create_default_mappings
from tenants.models import ConnectionStatus, FreshBooksAccount, JiraSite, Tenant
from tests.e2e.processes import HOST, free_port, start_web, start_worker
from tests.fakes.freshbooks import ACCOUNT_ID, BUSINESS_ID
from tests.fakes.freshbooks_auth import install_auth_routes
from tests.fakes.freshbooks_callbacks import install_callback_routes, signed_delivery, verification_delivery
from tests.fakes.freshbooks_records import put
from tests.fakes.jira import API_TOKEN, EMAIL

PASSWORD = "operator-pass-123"
FINAL = {Event.Status.SUCCEEDED, Event.Status.FAILED, Event.Status.SKIPPED, Event.Status.DUPLICATE}


def pytest_collection_modifyitems(config, items):
    here = str(__file__).rsplit("/", 1)[0]
    skip = pytest.mark.skip(
        reason="the e2e tests share the test database with real subprocesses: PostgreSQL only "
        "(CI: DATABASE_URL=postgres://…); SQLite's test database lives in memory"
    )
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.django_db(transaction=True))
            if connection.vendor != "postgresql":
                item.add_marker(skip)


def database_url():
    s = connection.settings_dict
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s.get('USER') or 'postgres'}{password}@{s.get('HOST') or HOST}:{s.get('PORT') or 5432}/{s['NAME']}"


def http():
    session = requests.Session()
    session.trust_env = False  # loopback only, whatever proxies the environment names
    return session


class Stack:
    """The running product and its vendors; see the module docstring."""

    def __init__(self, tmp_path, fb, jira, tenant, **worker_env):
        self.tmp_path, self.fb, self.jira, self.tenant = tmp_path, fb, jira, tenant
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.env = {
            "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": database_url(), "DEBUG": "0",
            "FRESHBOOKS_API_URL": fb.url, "FRESHBOOKS_AUTH_URL": fb.url,
            # Nothing may leave loopback: the Atlassian URLs point at the fake too.
            "ATLASSIAN_AUTH_URL": jira.url, "ATLASSIAN_API_URL": jira.url,
            "PUBLIC_BASE_URL": self.url, "CONN_MAX_AGE": "0", "Q_POLL": "0.1", "LOG_LEVEL": "INFO",
        }  # fmt: skip
        self.env = {**os.environ, **self.env}
        self.env.pop("REDIS_URL", None)
        self.worker_env = worker_env
        self.web = self.worker = None

    def start_web(self):
        self.web = start_web(self.env, self.tmp_path / "web.log", self.port)
        return self.web

    def start_worker(self, workers=1):
        env = {**self.env, **{k: str(v) for k, v in self.worker_env.items()}}
        self.worker = start_worker(env, self.tmp_path / "worker.log", workers)
        return self.worker

    def stop(self):
        for process in (self.worker, self.web):
            if process is not None and process.alive():
                process.stop(timeout=20)

    # --- the customer's way ----------------------------------------------------------------------------------

    def sign_in(self, user):
        session = http()
        page = session.get(f"{self.url}/admin/login/", timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        response = session.post(
            f"{self.url}/admin/login/?next=/admin/",
            data={"csrfmiddlewaretoken": token, "username": user.username, "password": PASSWORD, "next": "/admin/"},
            headers={"Referer": f"{self.url}/admin/login/"}, allow_redirects=False, timeout=10,
        )  # fmt: skip
        assert response.status_code == 302 and response.headers["Location"] == "/admin/", response.text[:500]
        return session

    def connect_freshbooks(self, session):
        """connect/ (confirm, POST) → the fake FreshBooks' consent page → Approve → the callback on the web."""
        url = f"{self.url}/oauth/freshbooks/connect/{self.tenant.slug}/"
        page = session.get(url, timeout=10)
        assert page.status_code == 200 and 'id="start-connect"' in page.text, page.text[:500]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        start = session.post(url, data={"csrfmiddlewaretoken": token}, headers={"Referer": url},
                             allow_redirects=False, timeout=10)  # fmt: skip
        assert start.status_code == 302, start.text[:500]
        consent = http().get(start.headers["Location"], timeout=10)
        href = unescape(re.search(r'id="approve"[^>]* data-href="([^"]+)"', consent.text).group(1))
        assert href.startswith(self.url + "/oauth/freshbooks/callback/"), href
        done = session.get(href, allow_redirects=False, timeout=30)
        assert done.status_code == 302 and "/admin/tenants/tenant/" in done.headers["Location"], done.text[
            :500
        ]
        return FreshBooksAccount.objects.get(tenant=self.tenant)

    def register_webhooks(self):
        """`register_webhooks`, then FreshBooks' callback.verify to each new callback's uri; waits until the
        worker has confirmed every verifier with FreshBooks."""
        call_command("register_webhooks", tenant=self.tenant.slug, stdout=io.StringIO())
        callbacks = dict(self.fb.state["callbacks"])
        assert callbacks, "register_webhooks created no callback"
        for callback_id, callback in callbacks.items():
            assert callback["uri"] == f"{self.url}/webhooks/freshbooks/"
            answer = http().post(
                callback["uri"], data=verification_delivery(self.fb, callback_id), timeout=10,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )  # fmt: skip
            assert answer.status_code == 200, answer.text
        wait_until(
            lambda: all(c["verified"] for c in self.fb.state["callbacks"].values()), 30, "verified callbacks"
        )
        return callbacks

    def verifier(self, event):
        for callback in self.fb.state["callbacks"].values():
            if callback["event"] in (event, event.split(".")[0]):
                return callback["verifier"]
        raise AssertionError(f"no callback for {event}")

    def delivery(self, name, object_id):
        fields = {"name": name, "object_id": str(object_id), "account_id": ACCOUNT_ID,
                  "business_id": BUSINESS_ID, "identity_id": "1234", "user_id": "1"}  # fmt: skip
        body, headers = signed_delivery(fields, self.verifier(name))
        return body, {
            **headers,
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "FreshHooks",
        }

    def deliver(self, name, object_id, session=None, retry_seconds=0.0):
        """POST one signed delivery; with `retry_seconds`, retried like FreshBooks on errors until a 200."""
        body, headers = self.delivery(name, object_id)
        deadline = time.monotonic() + retry_seconds
        while True:
            try:
                answer = (session or http()).post(f"{self.url}/webhooks/freshbooks/", data=body, headers=headers,
                                                  timeout=10)  # fmt: skip
                if answer.status_code == 200 or time.monotonic() > deadline:
                    return answer
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)

    def wait_processed(self, count=None, timeout=60):
        """Wait until every FreshBooks event (at least `count` of them) is final; returns them."""

        def done():
            events = list(Event.objects.filter(source=Event.Source.FRESHBOOKS))
            if count is not None and len(events) < count:
                return None
            return events if all(e.status in FINAL for e in events) else None

        return wait_until(done, timeout, "events processed", lambda: self.worker and self.worker.log_text())

    def issues(self):
        """The issues the connector created (marked with its issue property)."""
        with self.jira.lock:
            return [i for i in self.jira.state["issues"].values() if "ml-connector" in i["properties"]]

    def worklogs(self):
        with self.jira.lock:
            return [w for found in self.jira.state["worklogs"].values() for w in found]


def wait_until(check, timeout, what, diagnostics=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no {what} after {timeout} s\n{diagnostics() or ''}")


def add_invoices(fb, ids):
    """Invoices with these ids at the fake FreshBooks (copies of the vendor sample)."""
    for n in ids:
        put(fb, "invoice", {**fb.samples["invoice"], "id": n, "invoiceid": n})


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_user(
        "operator", "operator@example.com", PASSWORD, is_staff=True, is_superuser=True
    )


@pytest.fixture
def jira_tenant(jira):
    """The tenant, with its Jira Cloud site (email + API token) and the default mappings (project FIN)."""
    from django_q.models import Schedule

    Schedule.objects.all().delete()  # only what the tests enqueue runs
    tenant = Tenant.objects.create(name="Acme Corp", slug="acme")
    JiraSite.objects.create(
        tenant=tenant, base_url=jira.url, deployment=jira.deployment, auth_method=JiraSite.AuthMethod.BASIC,
        email=EMAIL, api_token=API_TOKEN, status=ConnectionStatus.CONNECTED,
    )  # fmt: skip
    create_default_mappings(tenant, "FIN")
    return tenant


@pytest.fixture
def make_stack(tmp_path, fb, jira, jira_tenant, operator, settings):
    """make_stack(**worker_env) → a Stack with web and worker running, FreshBooks connected, webhooks verified."""
    install_auth_routes(fb)
    install_callback_routes(fb)
    settings.FRESHBOOKS_AUTH_URL = fb.url
    stacks = []

    def make(**worker_env):
        stack = Stack(tmp_path, fb, jira, jira_tenant, **worker_env)
        stacks.append(stack)
        settings.PUBLIC_BASE_URL = stack.url
        stack.start_web()
        stack.start_worker()
        stack.connect_freshbooks(stack.sign_in(operator))
        stack.register_webhooks()
        return stack

    yield make
    for stack in stacks:
        stack.stop()
        for process in (stack.web, stack.worker):
            if process is not None:
                print(f"--- {process.name} log (tail)\n{process.log_text()}")


def concurrently(func, args_list, threads=8):
    """Run func(*args) for each args with `threads` threads; returns the results in order."""
    results = [None] * len(args_list)
    lock = threading.Lock()
    todo = iter(enumerate(args_list))

    def loop():
        while True:
            with lock:
                item = next(todo, None)
            if item is None:
                return
            index, args = item
            results[index] = func(*args)

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return results
