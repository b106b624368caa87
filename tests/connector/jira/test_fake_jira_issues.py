"""The fake Jira's issue/worklog/search/user routes reject what Jira rejects, so tests that pass mean something."""

import pytest
import requests

from connector.jira.adf import to_adf
from tests.fakes.jira import FakeJira, install_core_routes
from tests.fakes.jira_issues import install_issue_routes, parse_jql

AUTH = ("ops@acme.test", "jira-api-token")
GOOD = {"project": {"key": "FIN"}, "issuetype": {"name": "Task"}, "summary": "Invoice 1"}


def post(jira, path, body, version="3"):
    return requests.post(f"{jira.url}/rest/api/{version}/{path}", json=body, auth=AUTH, timeout=5)


def get(jira, path, version="3", **params):
    return requests.get(f"{jira.url}/rest/api/{version}/{path}", params=params, auth=AUTH, timeout=5)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"summary": "x" * 256}, "summary", "Summary can't exceed 255 characters."),
        ({"labels": ["has space"]}, "labels", "The label 'has space' can't contain spaces."),
        ({"description": "plain text"}, "description", "Operation value must be an Atlassian Document"),
        ({"project": {"key": "NOPE"}}, "project", "valid project"),
        ({"issuetype": {"name": "Story"}}, "issuetype", "valid issue type"),
        ({"customfield_1": "x"}, "customfield_1", "not on the appropriate screen"),
        ({"parent": {"key": "FIN-99"}}, "parent", "Could not find issue"),
    ],
)
def test_cloud_create_rejections(fake_jira, fields, field, message):
    response = post(fake_jira, "issue", {"fields": {**GOOD, **fields}})
    assert response.status_code == 400
    assert message in response.json()["errors"][field]
    assert fake_jira.state["issues"] == {}


def test_cloud_create_stores_fields_and_properties(fake_jira):
    body = {"fields": {**GOOD, "description": to_adf("Zoë"), "labels": ["a"]},
            "properties": [{"key": "ml-connector", "value": {"object_id": "1"}}]}  # fmt: skip
    response = post(fake_jira, "issue", body)
    assert response.status_code == 201 and response.json()["key"] == "FIN-1"
    prop = get(fake_jira, "issue/FIN-1/properties/ml-connector")
    assert prop.json() == {"key": "ml-connector", "value": {"object_id": "1"}}
    assert get(fake_jira, "issue/FIN-1/properties/other").status_code == 404
    assert get(fake_jira, "issue/FIN-1", fields="labels").json()["fields"] == {"labels": ["a"]}


def test_properties_must_be_a_list_of_key_value(fake_jira):
    response = post(fake_jira, "issue", {"fields": GOOD, "properties": {"ml-connector": {}}})
    assert response.status_code == 400
    assert fake_jira.spec_errors
    fake_jira.spec_errors.clear()


def test_search_jql_labels_project_lag_and_removed_search(fake_jira):
    post(fake_jira, "issue", {"fields": {**GOOD, "labels": ["a"]}})
    fake_jira.state["search_lag"] = 1
    post(fake_jira, "issue", {"fields": {**GOOD, "labels": ["b"]}})
    found = get(fake_jira, "search/jql", jql='project = FIN AND labels in ("a", "b")', fields="labels").json()
    assert [i["key"] for i in found["issues"]] == ["FIN-1"] and found[
        "isLast"
    ] is True  # FIN-2 not indexed yet
    found = get(fake_jira, "search/jql", jql='labels = "b" ORDER BY created ASC', fields="labels").json()
    assert [i["key"] for i in found["issues"]] == ["FIN-2"]
    assert get(fake_jira, "search/jql", jql="ORDER BY key").status_code == 400  # unbounded
    removed = get(fake_jira, "search", jql="project = FIN")
    assert removed.status_code == 410 and "search/jql" in removed.json()["errorMessages"][0]


def test_jql_parser():
    assert parse_jql('labels = "x" AND project in (FIN, "OPS") order by created') == [
        ("labels", {"x"}),
        ("project", {"FIN", "OPS"}),
    ]
    with pytest.raises(ValueError):
        parse_jql('summary ~ "x"')


def test_worklog_started_format_is_what_jira_parses(fake_jira):
    post(fake_jira, "issue", {"fields": GOOD})
    bad = post(
        fake_jira, "issue/FIN-1/worklog", {"started": "2026-01-01T10:00:00.000Z", "timeSpentSeconds": 60}
    )
    assert bad.status_code == 400 and fake_jira.spec_errors
    fake_jira.spec_errors.clear()
    good = post(fake_jira, "issue/FIN-1/worklog",
                {"started": "2026-01-01T10:00:00.000+0000", "timeSpentSeconds": 60, "comment": to_adf("x"),
                 "properties": [{"key": "k", "value": {"a": 1}}]})  # fmt: skip
    assert good.status_code == 201 and "properties" not in good.json()
    listed = get(fake_jira, "issue/FIN-1/worklog", expand="properties").json()
    assert listed["total"] == 1 and listed["worklogs"][0]["properties"] == [{"key": "k", "value": {"a": 1}}]


def test_failure_injection_applied_or_not(fake_jira):
    fake_jira.state["fail_next"] = [
        ("POST", r"/issue$", 500, True),
        {"method": "POST", "path": r"/issue$", "status": 500},
    ]
    assert post(fake_jira, "issue", {"fields": GOOD}).status_code == 500
    assert post(fake_jira, "issue", {"fields": GOOD}).status_code == 500
    assert list(fake_jira.state["issues"]) == ["FIN-1"]  # only the first was applied
    assert post(fake_jira, "issue", {"fields": GOOD}).status_code == 201


def test_user_search(fake_jira):
    fake_jira.state["users"] = [{"accountId": "a1", "emailAddress": "jane@x.test", "displayName": "Jane"}]
    assert [u["accountId"] for u in get(fake_jira, "user/search", query="jane@x.test").json()] == ["a1"]
    assert get(fake_jira, "user/search", query="bob@x.test").json() == []


def test_server_variant_wants_plain_text_and_answers_v2_search():
    jira = install_issue_routes(install_core_routes(FakeJira(deployment="server")))
    try:
        assert post(jira, "issue", {"fields": {**GOOD, "description": to_adf("x")}}, "2").status_code == 400
        assert post(jira, "issue", {"fields": {**GOOD, "description": "x"}}, "2").status_code == 201
        found = get(jira, "search", "2", jql="project = FIN").json()
        assert found["total"] == 1 and found["issues"][0]["fields"]["description"] == "x"
    finally:
        jira.close()
