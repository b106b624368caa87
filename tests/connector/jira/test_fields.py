"""Custom-field values take the JSON type of the Jira field (its schema), never a type guessed from the data.

Real-world report: a text custom field mapped to an invoice number got the JSON number 10045 and Jira refused
the whole create ("Operation value must be a string"), while "INV-0045" worked (research row 03).
"""

import json

import pytest

from connector.models import IssueMapping
from connector.preview import preview
from tenants.models import JiraSite
from tests.processing import created_issues, process

both = pytest.mark.parametrize("jira", ["cloud", "server"], indirect=True)
NUMBER = {"type": "number", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:float"}
DATE = {"type": "date", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:datepicker"}
DATETIME = {"type": "datetime", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:datetime"}
SELECT = {"type": "option", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:select"}


def map_custom(tenant, custom_fields, types=None):
    mapping = IssueMapping.objects.get(tenant=tenant, event="invoice.create")
    mapping.custom_fields = custom_fields
    mapping.custom_field_types = types or {}
    mapping.save()
    return mapping


@both
@pytest.mark.django_db
def test_numeric_looking_invoice_and_po_numbers_go_to_text_fields_as_text(connected, fb, jira):
    jira.state["custom_fields"] += ["customfield_10071", "customfield_10072"]  # single-line text fields
    fb.samples["invoice"].update(invoice_number="10045", po_number="4500012345")
    map_custom(
        connected,
        {"customfield_10071": "{{ invoice.invoice_number }}", "customfield_10072": "{{ po_number }}"},
    )

    event = process(connected, "invoice.create", 987654)

    assert event.status == "succeeded", event.status_detail
    fields = created_issues(jira)[0]["fields"]
    assert fields["customfield_10071"] == "10045" and fields["customfield_10072"] == "4500012345"
    # The schemas Jira gave are kept on the site: the next event asks nothing.
    site = JiraSite.objects.get(tenant=connected)
    assert site.field_schemas["customfield_10071"]["type"] == "string"
    process(connected, "invoice.create", 987654)
    assert len(jira.calls("GET", r"/field$")) == 1


@pytest.mark.django_db
def test_number_date_datetime_and_select_fields_get_their_json_types(connected, fb, jira):
    ids = ["customfield_10081", "customfield_10082", "customfield_10083", "customfield_10084"]
    jira.state["custom_fields"] += ids
    jira.state["field_schemas"] = dict(zip(ids, [NUMBER, DATE, DATETIME, SELECT], strict=True))
    fb.samples["invoice"].update(po_number="12E4")
    map_custom(connected, {
        "customfield_10081": "{{ po_number }}", "customfield_10082": "{{ invoice.updated }}",
        "customfield_10083": "2021-04-16 09:30:00", "customfield_10084": "{{ status }}",
    })  # fmt: skip

    event = process(connected, "invoice.create", 987654)

    assert event.status == "succeeded", event.status_detail
    fields = created_issues(jira)[0]["fields"]
    assert fields["customfield_10081"] == 120000.0
    assert fields["customfield_10082"] == fb.samples["invoice"]["updated"][:10]
    assert fields["customfield_10083"] == "2021-04-16T09:30:00.000+0000"
    assert fields["customfield_10084"] == {"value": "partial"}


@pytest.mark.django_db
def test_a_number_too_large_for_json_fails_readably_and_sends_nothing(connected, fb, jira):
    jira.state["custom_fields"].append("customfield_10081")
    jira.state["field_schemas"] = {"customfield_10081": NUMBER}
    fb.samples["invoice"].update(po_number="1e400")
    map_custom(connected, {"customfield_10081": "{{ po_number }}"})

    event = process(connected, "invoice.create", 987654)

    assert event.status == "failed"
    assert "customfield_10081" in event.status_detail and "'1e400'" in event.status_detail
    assert not created_issues(jira)


@pytest.mark.django_db
def test_an_explicit_type_in_the_mapping_wins_over_jiras_schema(connected, fb, jira):
    jira.state["custom_fields"].append("customfield_10081")
    jira.state["field_schemas"] = {"customfield_10081": {"type": "any"}}
    fb.samples["invoice"].update(po_number="3.10")
    map_custom(connected, {"customfield_10081": "{{ po_number }}"}, {"customfield_10081": "number"})

    event = process(connected, "invoice.create", 987654)

    assert event.status == "succeeded", event.status_detail
    assert created_issues(jira)[0]["fields"]["customfield_10081"] == 3.1


@pytest.mark.django_db
def test_a_refused_value_refreshes_the_kept_type_and_is_sent_again(connected, fb, jira):
    jira.state["custom_fields"].append("customfield_10071")  # a text field in Jira now
    site = JiraSite.objects.get(tenant=connected)
    site.field_schemas = {"customfield_10071": NUMBER}  # what Jira said when the mapping was saved
    site.save()
    fb.samples["invoice"].update(invoice_number="10045")
    map_custom(connected, {"customfield_10071": "{{ invoice.invoice_number }}"})

    event = process(connected, "invoice.create", 987654)

    assert event.status == "succeeded", event.status_detail
    sent = [body["fields"]["customfield_10071"] for body in created_issues(jira)]
    assert sent == [10045, "10045"]
    assert "refreshed from Jira" in event.status_detail
    site.refresh_from_db()
    assert site.field_schemas["customfield_10071"]["type"] == "string"


@pytest.mark.django_db
def test_saving_a_mapping_keeps_the_createmeta_schemas_and_preview_shows_the_typed_body(
    staff_client, connected, fb, jira
):
    jira.state["custom_fields"] += ["customfield_10071", "customfield_10081"]
    jira.state["field_schemas"] = {"customfield_10081": NUMBER}
    mapping = IssueMapping.objects.get(tenant=connected, event="invoice.create")
    data = {
        "tenant": connected.pk, "name": mapping.name, "event": mapping.event, "payment_kind": "",
        "condition": "", "project_key": "FIN", "issue_type": "Task", "summary_template": "x {{ invoice_number }}",
        "description_template": "", "labels": "[]", "parent_key": "", "reporter_from": "", "assignee_from": "",
        "custom_fields": json.dumps({"customfield_10071": "{{ invoice_number }}", "customfield_10081": "{{ amount }}"}),
        "custom_field_types": "{}", "enabled": "on", "order": "0",
    }  # fmt: skip
    response = staff_client.post(f"/admin/connector/issuemapping/{mapping.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]

    site = JiraSite.objects.get(tenant=connected)
    assert set(site.field_schemas) == {"customfield_10071", "customfield_10081"}
    mapping.refresh_from_db()
    fields = preview(mapping)["body"]["fields"]
    assert isinstance(fields["customfield_10071"], str) and isinstance(fields["customfield_10081"], float)
