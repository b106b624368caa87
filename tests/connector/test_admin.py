"""Saving a mapping in the admin: template errors and unknown Jira project/issue type/fields are form errors;
an unreachable Jira site still saves, with a warning that the check could not be done."""

import pytest

from connector.models import IssueMapping
from tests.factories import JiraSiteFactory

ADD_URL = "/admin/connector/issuemapping/add/"


def form_data(tenant, **overrides):
    data = {
        "tenant": tenant.pk,
        "name": "Invoice created",
        "event": "invoice.create",
        "payment_kind": "",
        "condition": "",
        "project_key": "FIN",
        "issue_type": "Task",
        "summary_template": "Invoice {{ invoice_number }}",
        "description_template": "",
        "labels": '["freshbooks", "invoice"]',
        "parent_key": "",
        "custom_fields": "{}",
        "reporter_from": "",
        "assignee_from": "",
        "enabled": "on",
        "order": 0,
    }
    data.update(overrides)
    return data


@pytest.fixture
def site(tenant, fake_jira):
    fake_jira.state["custom_fields"] = ["customfield_10071"]
    return JiraSiteFactory(tenant=tenant, base_url=fake_jira.url)


def errors(response):
    return {name: list(errs) for name, errs in response.context["adminform"].form.errors.items()}


def test_valid_mapping_is_checked_against_jira_and_saved(staff_client, tenant, site, fake_jira):
    response = staff_client.post(
        ADD_URL, form_data(tenant, custom_fields='{"customfield_10071": "{{ invoice_number }}"}'), follow=True
    )
    assert response.status_code == 200
    assert IssueMapping.objects.filter(tenant=tenant, project_key="FIN").exists()
    assert fake_jira.calls("GET", r"/createmeta/FIN/issuetypes/\d+$")
    assert not any(m.level_tag == "warning" for m in response.context["messages"])


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("summary_template", "Invoice {% if %}", "Template error in the summary template, line 1 ({% if %})"),
        ("description_template", "Hello\n\n{{ amount|nope }}", "the description template, line 3"),
        ("description_template", "{{ amount|nope }}", "Invalid filter"),
        ("condition", "{% endif %}", "Template error in the condition template, line 1"),
        ("labels", '["ok", "{% bad %}"]', "Template error in the label '{% bad %}' template"),
        ("labels", '"freshbooks"', "JSON list"),
        (
            "custom_fields",
            '{"customfield_10071": "{{ x|nope }}"}',
            "the custom field customfield_10071 template",
        ),
    ],
)
def test_template_errors_are_shown_on_their_field(staff_client, tenant, site, field, value, message):
    response = staff_client.post(ADD_URL, form_data(tenant, **{field: value}))
    assert response.status_code == 200
    assert message in " ".join(errors(response)[field])
    assert not IssueMapping.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"project_key": "NOPE"}, "project_key", "Jira has no project “NOPE”"),
        ({"issue_type": "Story"}, "issue_type", "no issue type “Story”. Available: Bug, Epic, Task."),
        ({"custom_fields": '{"customfield_99999": "x"}'}, "custom_fields", "customfield_99999"),
        ({"parent_key": "FIN-404"}, "parent_key", "Jira has no issue “FIN-404”"),
    ],
)
def test_unknown_jira_ids_are_form_errors(staff_client, tenant, site, overrides, field, message):
    response = staff_client.post(ADD_URL, form_data(tenant, **overrides))
    assert response.status_code == 200
    assert message in " ".join(errors(response)[field])
    assert not IssueMapping.objects.exists()


def test_unreachable_site_saves_with_a_warning(staff_client, tenant, fake_server):
    gone = fake_server("gone")
    url = gone.url
    gone.close()
    JiraSiteFactory(tenant=tenant, base_url=url, api_token="t")
    response = staff_client.post(ADD_URL, form_data(tenant), follow=True)
    assert IssueMapping.objects.filter(tenant=tenant).exists()
    warnings = [str(m) for m in response.context["messages"] if m.level_tag == "warning"]
    assert len(warnings) == 1 and "without checking" in warnings[0] and "could not be asked" in warnings[0]


def test_rejected_credentials_also_save_with_a_warning(staff_client, tenant, fake_jira):
    JiraSiteFactory(tenant=tenant, base_url=fake_jira.url, api_token="wrong")
    response = staff_client.post(ADD_URL, form_data(tenant), follow=True)
    assert IssueMapping.objects.exists()
    assert any("401" in str(m) for m in response.context["messages"] if m.level_tag == "warning")


def test_tenant_without_a_site_saves_with_a_warning(staff_client, tenant):
    response = staff_client.post(ADD_URL, form_data(tenant), follow=True)
    assert IssueMapping.objects.exists()
    assert any("no Jira site" in str(m) for m in response.context["messages"])


def test_preview_renders_the_forms_unsaved_values_and_the_saved_one_says_so(staff_client, tenant, site):
    staff_client.post(ADD_URL, form_data(tenant))
    mapping = IssueMapping.objects.get(tenant=tenant)
    url = f"/admin/connector/issuemapping/{mapping.pk}/preview/"

    saved = staff_client.get(url).content.decode()
    assert "As the mapping is <strong>saved</strong>" in saved and "Invoice ACM0002" in saved

    typed = form_data(tenant, summary_template="Unsaved {{ invoice_number }} for {{ client_name }}")
    unsaved = staff_client.post(url, typed).content.decode()
    assert "not saved yet" in unsaved and "Unsaved ACM0002 for" in unsaved
    mapping.refresh_from_db()
    assert mapping.summary_template == "Invoice {{ invoice_number }}", "previewing saves nothing"

    broken = staff_client.post(url, form_data(tenant, summary_template="{% if %}")).content.decode()
    assert "Template error in the summary template, line 1" in broken
