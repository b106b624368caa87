"""Every text Jira limits is fitted before sending, counted as Jira counts (UTF-16 units), with a visible
"(truncated)" marker and a note on the event (research row 06: a 450-line invoice's description was refused)."""

import copy

import pytest

from connector.models import IssueMapping, WorklogRule
from connector.render import render_fields
from tests.connector.handlers.test_worklogs import ENTRY, add_issue
from tests.processing import created_issues, description_text, process, worklogs

TEXT_MAX = 32767  # Jira: description, worklog comment, multi-line text fields


def java_length(text):
    """Length as Jira (Java) counts it: UTF-16 units."""
    return len(text.encode("utf-16-le")) // 2


both = pytest.mark.parametrize("jira", ["cloud", "server"], indirect=True)
LINES = "Invoice {{ invoice_number }} for {{ client_name }}\n\n{% for l in lines %}- {{ l.name }}: {{ l.description }} ({{ l.qty }} x) {{ l.amount }}\n{% endfor %}"


def comment_text(value):
    return description_text({"description": value})


@both
@pytest.mark.django_db
def test_a_450_line_invoice_description_is_cut_with_a_marker_and_the_issue_is_created(connected, fb, jira):
    line = fb.samples["invoice"]["lines"][0]
    fb.samples["invoice"]["lines"] = [
        {**copy.deepcopy(line), "lineid": n, "name": f"Item {n}", "description": "Melmac melamine resin dinnerware, "
         "molded, dishwasher safe, boxed"} for n in range(450)
    ]  # fmt: skip
    IssueMapping.objects.filter(tenant=connected, event="invoice.create").update(description_template=LINES)

    event = process(connected, "invoice.create", 987654)

    assert event.status == "succeeded", event.status_detail
    text = description_text(created_issues(jira)[0]["fields"])
    assert java_length(text) <= TEXT_MAX and text.endswith("(truncated)")
    assert text.startswith("Invoice ACM0002 for Gordon Shumway") and "- Item 0: Melmac" in text
    assert "description cut to Jira's limit of 32,767 characters" in event.status_detail


@both
@pytest.mark.django_db
def test_a_long_time_entry_note_becomes_a_fitted_worklog_comment(connected, fb, jira):
    add_issue(jira, "FIN-7")
    WorklogRule.objects.create(tenant=connected, match_kind="note_key")
    fb.samples["time_entry"]["note"] = "FIN-7 call notes: " + "\U0001f4de ring " * 6000  # emoji: 2 Java chars

    event = process(connected, "time_entry.create", ENTRY)

    assert event.status == "succeeded", event.status_detail
    comment = comment_text(worklogs(jira)[0]["comment"])
    assert java_length(comment) <= TEXT_MAX < len(comment.encode("utf-16-le"))
    assert comment.endswith("(truncated)") and comment.startswith("FIN-7 call notes")
    assert "worklog comment cut to Jira's limit" in event.status_detail


@pytest.mark.django_db
def test_single_line_text_custom_fields_and_labels_are_cut_to_255_with_a_marker(connected, fb, jira):
    jira.state["custom_fields"].append("customfield_10071")
    fb.samples["invoice"]["notes"] = "N" * 400
    IssueMapping.objects.filter(tenant=connected, event="invoice.create").update(
        custom_fields={"customfield_10071": "{{ notes }}"}, labels=["freshbooks", "note-{{ notes }}"]
    )

    event = process(connected, "invoice.create", 987654)

    assert event.status == "succeeded", event.status_detail
    fields = created_issues(jira)[0]["fields"]
    assert len(fields["customfield_10071"]) == 255 and fields["customfield_10071"].endswith("…(truncated)")
    long_label = next(label for label in fields["labels"] if label.startswith("note-"))
    assert len(long_label) == 255 and long_label.endswith("…(truncated)")
    assert "customfield_10071 cut to Jira's limit of 255" in event.status_detail


def test_a_cut_description_is_still_valid_adf_and_never_splits_a_character():
    mapping = IssueMapping(name="m", event="invoice.create", project_key="FIN", summary_template="s",
                           description_template="{{ text }}")  # fmt: skip
    notes = []
    fields = render_fields(mapping, {"text": "a" + "\U0001f600" * 20000}, None, notes=notes)
    text = comment_text(fields["description"])
    assert fields["description"]["type"] == "doc" and fields["description"]["version"] == 1
    assert java_length(text) <= TEXT_MAX and text.endswith("(truncated)")
    text.encode("utf-8")  # no lone surrogate
    assert notes and "description" in notes[0]
