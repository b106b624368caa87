"""A mapping's templates → Jira fields: summary, ADF/plain description, labels, parent, custom fields, users."""

import pytest

from connector.jira.adf import to_text
from connector.models import IssueMapping
from connector.render import (
    RenderError,
    condition_holds,
    render_fields,
    render_text,
    sanitize_label,
    truncate_summary,
)
from tenants.models import JiraSite

CONTEXT = {
    "invoice_number": "0042",
    "client_name": "Zoë Müller & Søn <GmbH>",
    "amount": "-12.50",
    "currency": "EUR",
    "due_date": None,
    "status": "draft",
    "kind": "invoice",
    "link": "https://my.freshbooks.com/#/invoice/42",
    "client": {"email": None, "organization": "Ünïcode Ltd"},
}


def mapping(**overrides):
    values = {
        "name": "Invoice created",
        "event": "invoice.create",
        "project_key": "FIN",
        "issue_type": "Task",
        "summary_template": "Invoice {{ invoice_number }} for {{ client_name }}: {{ amount }} {{ currency }}",
        "description_template": "Due: {{ due_date }}|{{ missing.value }}|{{ client.email }}\n\n- Open: {{ link }}",
        "labels": ["freshbooks", "{{ kind }}", "Kind {{ kind }}", "freshbooks", "{{ nothing }}"],
    }
    values.update(overrides)
    return IssueMapping(**values)


def site(deployment):
    return JiraSite(base_url="https://acme.atlassian.net", deployment=deployment)


def test_text_is_not_html_escaped_and_missing_or_none_values_are_empty():
    assert render_text("{{ client_name }}", CONTEXT) == "Zoë Müller & Søn <GmbH>"
    assert render_text("[{{ due_date }}][{{ nope }}][{{ client.email }}]", CONTEXT) == "[][][]"
    assert render_text("{{ due_date|default:'—' }}", CONTEXT) == "—"


def test_syntax_and_render_errors_raise_render_error_with_the_reason():
    with pytest.raises(RenderError, match="Template error"):
        render_text("{% if %}", {})
    with pytest.raises(RenderError, match="Invalid filter"):
        render_text("{{ amount|no_such_filter }}", {})


@pytest.mark.parametrize(
    ("condition", "holds"),
    [("", True), ("  ", True), ("{{ status }}", True), ("{% if amount|slice:':1' == '-' %}yes{% endif %}", True),
     ("{{ nope }}", False), ("false", False), ("0", False), ("No", False)],
)  # fmt: skip
def test_condition(condition, holds):
    assert condition_holds(mapping(condition=condition), CONTEXT) is holds


def test_summary_is_one_line_and_cut_to_255_with_an_ellipsis():
    assert truncate_summary("a\n  b\tc ") == "a b c"
    exact = "x" * 255
    assert truncate_summary(exact) == exact
    cut = truncate_summary("y" * 300)
    assert len(cut) == 255 and cut.endswith("…") and cut.startswith("y" * 254)


def test_labels_have_no_whitespace():
    assert sanitize_label("  Kind of  thing\n") == "Kind-of-thing"
    assert len(sanitize_label("z" * 300)) == 255


def test_cloud_fields():
    fields = render_fields(
        mapping(
            summary_template="Invoice {{ invoice_number }} for {{ client_name }}",
            parent_key="FIN-7",
            custom_fields={
                "customfield_10071": "{{ invoice_number }}",
                "customfield_10072": "{{ amount }}",
                "customfield_10073": '{"value": "{{ status }}"}',
                "customfield_10074": {"value": "{{ currency }}"},
                "customfield_10075": '"{{ amount }}"',
                "customfield_10076": "{{ nothing }}",
            },
        ),
        {**CONTEXT, "client_name": "C" * 300},
        site("cloud"),
        reporter_id="acc-1",
        assignee_id="acc-2",
        types={"customfield_10071": "string", "customfield_10072": "number", "customfield_10073": "option"},
    )
    assert fields["project"] == {"key": "FIN"}
    assert fields["issuetype"] == {"name": "Task"}
    assert len(fields["summary"]) == 255 and fields["summary"].endswith("…")
    assert fields["description"]["type"] == "doc"
    assert to_text(fields["description"]) == "Due: ||\n\n- Open: https://my.freshbooks.com/#/invoice/42"
    assert fields["labels"] == ["freshbooks", "invoice", "Kind-invoice"]
    assert fields["parent"] == {"key": "FIN-7"}
    assert fields["customfield_10071"] == "0042"  # leading zeros: stays text
    assert fields["customfield_10072"] == -12.5  # a number field gets a JSON number
    assert fields["customfield_10073"] == {"value": "draft"}
    assert fields["customfield_10074"] == {"value": "EUR"}
    assert fields["customfield_10075"] == "-12.50"  # type unknown: text (a JSON string literal is unwrapped)
    assert "customfield_10076" not in fields  # empty values are left out
    assert fields["reporter"] == {"accountId": "acc-1"} and fields["assignee"] == {"accountId": "acc-2"}


def test_server_fields_use_plain_text_and_user_names():
    fields = render_fields(mapping(), CONTEXT, site("server"), assignee_id="jdoe")
    assert fields["description"] == "Due: ||\n\n- Open: https://my.freshbooks.com/#/invoice/42"
    assert fields["assignee"] == {"name": "jdoe"}
    assert "reporter" not in fields


def test_blank_optional_templates_leave_fields_out_and_blank_summary_falls_back_to_the_name():
    fields = render_fields(
        mapping(summary_template="{{ nope }}", description_template="{{ nope }}", labels=[]),
        {},
        site("cloud"),
    )
    assert fields["summary"] == "Invoice created"
    assert not {"description", "labels", "parent", "reporter", "assignee"} & set(fields)


def test_a_custom_field_error_names_the_field():
    with pytest.raises(RenderError, match="customfield_1"):
        render_fields(mapping(custom_fields={"customfield_1": "{% bad %}"}), {}, site("cloud"))
