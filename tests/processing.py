"""Fixtures and helpers shared by the event-processing tests (handlers, process_event, worklogs, replay, e2e).

The fixtures are registered for every test by tests/conftest.py:
- ``fb``: the fake FreshBooks with record routes, preloaded with the vendor-shaped fixture records
  (``fb.state["records"]``); ``settings.FRESHBOOKS_API_URL`` points at it.
- ``jira``: a fake Jira, Cloud v3 by default; parametrize indirectly with "server" for Server/DC v2.
  Every Cloud request is validated against the OpenAPI spec; a violation fails the test.
- ``connected``: the tenant with its FreshBooks account and Jira site, and the default mappings (project FIN).
"""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from connector.sandbox.freshbooks import ACCESS_TOKEN, ACCOUNT_ID, BUSINESS_ID, make_fake_freshbooks
from connector.sandbox.freshbooks_records import install_record_routes, put
from connector.sandbox.jira import API_TOKEN, EMAIL, FakeJira, install_core_routes
from connector.sandbox.jira_issues import install_issue_routes

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "freshbooks"


def load(path):
    return json.loads((FIXTURES / path).read_text())


def record_of(path):
    """The single record inside a fixture, whatever its envelope."""
    data = load(path)
    if "response" in data:
        return next(iter(data["response"]["result"].values()))
    return data.get("time_entry") or data.get("project")


def install_fixture_records(fb):
    """Every vendor-shaped sample record the tests use, stored under its id."""
    records = {
        "invoice": record_of("java-sdk/get_invoice_response.json"),
        "payment": record_of("java-sdk/get_payment_response.json"),
        "expense": record_of("java-sdk/get_expense_response.json"),
        "client": record_of("java-sdk/get_client_response.json"),
        "time_entry": record_of("java-sdk/get_time_entry_response.json"),
        "project": record_of("java-sdk/get_project_response.json"),
        "bill": record_of("synthetic/get_bill_response.json"),
        "bill_vendor": record_of("synthetic/get_bill_vendor_response.json"),
        "expense_category": record_of("synthetic/get_expense_category_response.json"),
    }
    return {kind: put(fb, kind, record) for kind, record in records.items()}


def connected_account(tenant, account_id=ACCOUNT_ID, business_id="6543"):
    """A FreshBooksAccount whose access token the fake accepts (valid for an hour)."""
    from tenants.models import ConnectionStatus, FreshBooksAccount

    return FreshBooksAccount.objects.create(
        tenant=tenant,
        account_id=account_id,
        business_id=business_id,
        access_token=ACCESS_TOKEN,
        refresh_token="fb-refresh-token",
        token_expires_at=timezone.now() + timedelta(hours=1),
        status=ConnectionStatus.CONNECTED,
    )


def run_queued(func_name):
    """Run (and remove) the broker's queued tasks for `func_name`, the way a django-q worker would."""
    from django.utils.module_loading import import_string
    from django_q.models import OrmQ

    results = []
    for item in OrmQ.objects.order_by("id"):
        task = item.task
        if task.get("func") == func_name:
            item.delete()
            results.append(import_string(func_name)(*task["args"], **task.get("kwargs", {})))
    return results


def queued(func_name=None):
    """The (func, args) of the tasks waiting in the ORM broker."""
    from django_q.models import OrmQ

    tasks = [
        (item.task.get("func"), tuple(item.task.get("args", ()))) for item in OrmQ.objects.order_by("id")
    ]
    return [t for t in tasks if func_name is None or t[0] == func_name]


@pytest.fixture
def fb(settings):
    server = make_fake_freshbooks()
    install_record_routes(server)
    server.samples = install_fixture_records(server)
    settings.FRESHBOOKS_API_URL = server.url
    yield server
    server.close()


@pytest.fixture
def jira(request):
    deployment = getattr(request, "param", "cloud")
    server = install_issue_routes(install_core_routes(FakeJira(deployment=deployment)))
    yield server
    server.close()
    assert not server.spec_errors, (
        "requests that do not conform to the Jira Cloud OpenAPI spec:\n" + "\n".join(server.spec_errors)
    )


def connect(tenant, fb, jira):
    from connector.defaults import create_default_mappings
    from tenants.models import ConnectionStatus, FreshBooksAccount, JiraSite

    FreshBooksAccount.objects.create(
        tenant=tenant, account_id=ACCOUNT_ID, business_id=BUSINESS_ID, business_name="Acme Books",
        access_token=ACCESS_TOKEN, refresh_token="fb-refresh", status=ConnectionStatus.CONNECTED,
        token_expires_at=timezone.now() + timedelta(hours=1),
    )  # fmt: skip
    JiraSite.objects.create(
        tenant=tenant, base_url=jira.url, deployment=jira.deployment, auth_method=JiraSite.AuthMethod.BASIC,
        email=EMAIL, api_token=API_TOKEN, status=ConnectionStatus.CONNECTED,
    )  # fmt: skip
    create_default_mappings(tenant, "FIN")
    return tenant


@pytest.fixture
def connected(tenant, fb, jira):
    return connect(tenant, fb, jira)


def make_event(tenant, name, object_id, status="queued"):
    from audit.models import Event

    return Event.objects.create(
        tenant=tenant, name=name, object_id=str(object_id), account_id=ACCOUNT_ID, business_id=BUSINESS_ID,
        payload={"name": name, "object_id": str(object_id), "account_id": ACCOUNT_ID, "business_id": BUSINESS_ID},
        status=status,
    )  # fmt: skip


def process(tenant, name, object_id):
    """Store an event and process it inline; returns the event reloaded."""
    from connector.tasks import process_event

    event = make_event(tenant, name, object_id)
    process_event(event.pk)
    event.refresh_from_db()
    return event


def created_issues(jira):
    """The create requests the fake Jira received (bodies), in order."""
    return [r.json() for r in jira.calls("POST", r"/rest/api/[23]/issue$")]


def issues(jira):
    with jira.lock:
        return list(jira.state["issues"].values())


def worklogs(jira):
    with jira.lock:
        return [w for found in jira.state["worklogs"].values() for w in found]


def description_text(fields):
    """The description as text: ADF flattened on Cloud, the string on Server."""
    from connector.jira.adf import to_text

    value = fields.get("description")
    return to_text(value) if isinstance(value, dict) else (value or "")
