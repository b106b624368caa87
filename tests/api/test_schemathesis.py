"""schemathesis against the served schema (GET /api/schema/), in process through the WSGI application, for every
role: generated requests — valid ones and, in negative mode, invalid ones — to every operation, and each answer
checked: no 5xx, a documented status, content type and headers, and a body matching the schema.

Bounded (MAX_EXAMPLES per operation and mode, derandomized so CI repeats the same run): about a minute on two
cores. Each operation also runs once more with its path pinned to real objects (tenant "acme", an event with
attempts), so details, dry runs, refusals, pause and resume are exercised, not only 404s."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from audit.models import Attempt, Event
from connector.models import Link
from tenants.models import ConnectionStatus, FreshBooksAccount

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = 10
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def world(tenant, settings):
    """A connected tenant with events of every shape; no Jira site (a rollback is refused, never sent)."""
    settings.API_THROTTLE_RATE = settings.API_ACTION_THROTTLE_RATE = ""  # this run is not throttled
    FreshBooksAccount.objects.create(
        tenant=tenant, account_id="6BApk", business_id="77", status=ConnectionStatus.CONNECTED
    )
    event = Event.objects.create(
        tenant=tenant, name="invoice.create", object_id="42", status="succeeded", jira_key="FIN-1",
        payload={"name": "invoice.create", "object_id": "42"}, record={"id": 42, "notes": "ü ✓"},
    )  # fmt: skip
    Attempt.objects.create(
        event=event, action="POST /rest/api/3/issue", request={"json": {"fields": {}}}, response='{"key": "FIN-1"}',
        http_status=201, previous={"before": None},
    )  # fmt: skip
    Link.objects.create(
        tenant=tenant, dedupe_key="acme:invoice:42", object_type="invoice", object_id="42", state="created",
        jira_issue_key="FIN-1", jira_issue_id="10001", event=event,
    )  # fmt: skip
    Event.objects.create(
        tenant=tenant, name="bill.create", object_id="7", status="failed", status_detail="400"
    )
    Event.objects.create(
        tenant=None, source="jira", name="jira:issue_deleted", object_id="1", status="skipped"
    )
    return {"slug": tenant.slug, "id": event.pk}


@pytest.fixture
def wsgi_app():
    """The project's WSGI application, called in this thread and this test's transaction. Like Django's test
    client, it must not close the database connection after each request (it would end the test's transaction)."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield get_wsgi_application()
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def run_operation(operation, strategy, headers):
    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
    )  # fmt: skip
    def check(case):
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()


@pytest.mark.parametrize("role", ["anonymous", "viewer", "operator", "administrator"])
def test_every_answer_matches_the_schema(role, world, tokens, wsgi_app):
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_app)
    headers = {"Authorization": f"Bearer {tokens[role]}"} if role in tokens else {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 11, [op.label for op in operations]
    for operation in operations:
        pinned = {name: world[name] for name in ("slug", "id") if f"{{{name}}}" in operation.path}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run_operation(operation, operation.as_strategy(generation_mode=mode), headers)
        if pinned:
            run_operation(operation, operation.as_strategy(path_parameters=pinned), headers)
