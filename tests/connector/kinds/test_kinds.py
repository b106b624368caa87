"""The kinds registry (connector.kinds): every declared event is complete, and nothing undeclared gets in.

The guard: adding a FreshBooks kind means one declaration (connector/kinds/<kind>.py, registered in KINDS),
a handler only if it writes something new, a Preview sample and a test fixture record. A declaration missing
any of them fails here (docs/architecture.md, "Adding a kind").
"""

import pytest
from django.core.exceptions import ValidationError

from connector.freshbooks.client import ACCOUNTING_RESOURCES
from connector.handlers import HANDLERS, WRITERS
from connector.kinds import EVENTS, KINDS, MAPPING_EVENTS, build_context, docs_for, kind_for
from connector.models import IssueMapping
from connector.preview import load_sample


@pytest.mark.parametrize("event", EVENTS)
def test_every_declared_event_has_a_handler_a_preview_sample_and_a_fixture(event, fb):
    kind = kind_for(event)
    assert kind is not None and event in kind.events
    assert HANDLERS[kind.name] is WRITERS[kind.writes], f"{kind.name}: no handler writes {kind.writes!r}"
    assert load_sample(kind.name) is not None, f"connector/samples/{kind.name}.json is missing"
    assert kind.name in fb.samples, (
        f"tests/processing.py (install_fixture_records) has no fixture {kind.name} record"
    )


@pytest.mark.parametrize("name", list(KINDS))
def test_every_context_key_is_documented_and_every_documented_key_is_built(name):
    record, related = load_sample(name)
    context = build_context(name, record, related=related, event_name=f"{name}.create")
    assert set(context) == set(docs_for(name))


@pytest.mark.parametrize("name", list(KINDS))
def test_where_a_kind_lives_matches_the_client_paths(name):
    kind = KINDS[name]
    assert kind.scope in ("account", "business")
    assert (name in ACCOUNTING_RESOURCES) == (kind.scope == "account")


def test_events_are_the_kinds_actions_and_mappings_take_the_issue_kinds():
    assert kind_for("invoice.create").name == "invoice" and kind_for("time_entry.delete").name == "time_entry"
    assert kind_for("estimate.create") is None and kind_for("invoice") is None and kind_for("") is None
    assert "payment.create" in MAPPING_EVENTS and "client.update" in MAPPING_EVENTS
    assert not any(event.startswith("time_entry.") for event in MAPPING_EVENTS)  # worklog rules, not mappings


@pytest.mark.django_db
def test_a_mapping_for_an_undeclared_event_is_refused(tenant):
    mapping = IssueMapping(tenant=tenant, name="Estimates", event="estimate.create", project_key="FIN",
                           summary_template="x")  # fmt: skip
    with pytest.raises(ValidationError) as refused:
        mapping.full_clean()
    assert "event" in refused.value.message_dict
    mapping.event = "invoice.create"
    mapping.full_clean()
