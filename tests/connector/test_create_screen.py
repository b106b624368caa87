"""The create-screen contract: a mapping is checked for every field the connector sends (its own mlc- label
always, reporter/assignee when set), creates name the issue type by id, and an optional field Jira refuses as not
on the screen is left out with a note (the ml-connector property still marks the issue)."""

import io

import pytest
from django.core.management import call_command

from connector.models import IssueMapping
from tenants.models import JiraSite
from tests.connector.test_admin import ADD_URL, errors, form_data
from tests.processing import created_issues, issues, process

pytestmark = pytest.mark.django_db


@pytest.fixture
def site(tenant, fake_jira):
    return JiraSite.objects.create(
        tenant=tenant, base_url=fake_jira.url, email="ops@acme.test", api_token="jira-api-token"
    )


def test_a_mapping_for_a_screen_without_labels_is_refused_naming_the_connectors_label(
    staff_client, tenant, site, fake_jira
):
    fake_jira.state["projects"]["FIN"]["hidden"] = ["labels"]
    response = staff_client.post(ADD_URL, form_data(tenant, labels="[]"))

    assert response.status_code == 200  # the form again, not saved
    (message,) = errors(response)["labels"]
    assert "Not on the create screen of FIN / Task: Labels" in message and "mlc- label" in message
    assert not IssueMapping.objects.exists()


@pytest.mark.parametrize(
    ("hidden", "overrides", "field"),
    [
        ("reporter", {"reporter_from": "client"}, "reporter_from"),
        ("assignee", {"assignee_from": "client"}, "assignee_from"),
        ("description", {"description_template": "Due {{ due_date }}"}, "description_template"),
    ],
)
def test_every_field_the_mapping_sends_is_checked(
    staff_client, tenant, site, fake_jira, hidden, overrides, field
):
    fake_jira.state["projects"]["FIN"]["hidden"] = [hidden]
    response = staff_client.post(ADD_URL, form_data(tenant, **overrides))

    assert response.status_code == 200
    assert "Not on the create screen of FIN / Task" in " ".join(errors(response)[field])
    # The same mapping without that field saves.
    assert staff_client.post(ADD_URL, form_data(tenant)).status_code == 302


def test_check_connections_reports_a_mapping_whose_screen_lost_labels(connected, jira):
    jira.state["projects"]["FIN"]["hidden"] = ["labels"]
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("check_connections", "--tenant", "acme", stdout=out, stderr=io.StringIO())
    assert "Not on the create screen of FIN / Task: Labels" in out.getvalue()


def test_a_team_managed_projects_own_task_is_created_by_id(staff_client, tenant, site, fake_jira):
    fake_jira.state["projects"]["TEAM"] = {
        "id": "10100", "key": "TEAM", "name": "Team", "issueTypes": ["Task"], "ownTypes": {"10050": "Task"},
    }  # fmt: skip
    assert staff_client.post(ADD_URL, form_data(tenant, project_key="TEAM")).status_code == 302
    assert IssueMapping.objects.get().issue_type_id == "10050"


@pytest.mark.django_db
def test_creates_in_a_team_managed_project_name_its_own_type_by_id(connected, fb, jira):
    jira.state["projects"]["TEAM"] = {
        "id": "10100", "key": "TEAM", "name": "Team", "issueTypes": ["Task"], "ownTypes": {"10050": "Task"},
    }  # fmt: skip
    IssueMapping.objects.filter(tenant=connected, event="invoice.create").update(project_key="TEAM")

    event = process(connected, "invoice.create", 987654)

    assert event.status == "succeeded", event.status_detail
    assert created_issues(jira)[0]["fields"]["issuetype"] == {"id": "10050"}
    assert IssueMapping.objects.get(tenant=connected, event="invoice.create").issue_type_id == "10050"


def test_when_jira_refuses_labels_the_issue_is_created_without_them_and_the_event_says_so(
    connected, fb, jira
):
    jira.state["projects"]["FIN"]["hidden"] = ["labels"]  # the screen changed after the mapping was saved

    event = process(connected, "invoice.create", 987654)

    assert event.status == "succeeded", event.status_detail
    assert "issue created without Labels: Jira refused it as not on the screen" in event.status_detail
    (issue,) = issues(jira)
    assert "labels" not in issue["fields"]
    assert issue["properties"]["ml-connector"] == {
        "tenant": "acme",
        "object_type": "invoice",
        "object_id": "987654",
    }


def test_an_update_leaves_out_a_custom_field_the_edit_screen_lacks(connected, fb, jira):
    jira.state["custom_fields"] = ["customfield_10071"]
    mapping = IssueMapping.objects.get(tenant=connected, event="invoice.create")
    mapping.custom_fields = {"customfield_10071": "{{ invoice_number }}"}
    mapping.save()
    assert process(connected, "invoice.create", 987654).status == "succeeded"
    mapping.pk, mapping.event, mapping.name = None, "invoice.update", "Invoice updated"
    mapping.save()
    jira.state["projects"]["FIN"]["hidden"] = ["customfield_10071"]

    event = process(connected, "invoice.update", 987654)

    assert event.status == "succeeded", event.status_detail
    assert "FIN-1 updated without customfield_10071" in event.status_detail


def test_a_refused_required_field_still_fails_the_event(connected, fb, jira):
    jira.state["projects"]["FIN"]["hidden"] = ["summary"]
    event = process(connected, "invoice.create", 987654)
    assert event.status == "failed" and "summary" in event.status_detail


def test_create_tenant_refuses_a_project_whose_screen_lacks_what_the_default_mappings_send(
    fake_jira, monkeypatch
):
    from django.core.management.base import CommandError

    from connector.sandbox.jira import API_TOKEN, EMAIL
    from tenants.models import Tenant

    fake_jira.state["projects"]["FIN"]["hidden"] = ["labels", "description"]
    monkeypatch.setenv("JIRA_API_TOKEN", API_TOKEN)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    args = ["--name", "Globex", "--slug", "globex", "--jira-url", fake_jira.url, "--jira-email", EMAIL,
            "--jira-project", "FIN"]  # fmt: skip
    with pytest.raises(CommandError, match=r"Not on the create screen of FIN / Task: Labels .*Description"):
        call_command("create_tenant", *args, stdout=io.StringIO())
    assert not Tenant.objects.exists()


def test_a_stale_issue_type_id_is_asked_again(connected, fb, jira):
    IssueMapping.objects.filter(tenant=connected, event="invoice.create").update(issue_type_id="10999")

    event = process(connected, "invoice.create", 987654)

    assert event.status == "succeeded", event.status_detail
    assert "issue type “Task” of FIN asked again from Jira" in event.status_detail
    assert [body["fields"]["issuetype"] for body in created_issues(jira)] == [
        {"id": "10999"},
        {"id": "10001"},
    ]
    assert IssueMapping.objects.get(tenant=connected, event="invoice.create").issue_type_id == "10001"
