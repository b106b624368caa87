"""The fake Jira itself: it rejects requests the real Jira Cloud API would not accept."""

import requests


def test_conforming_request_passes_and_a_bad_one_is_caught(fake_jira):
    auth = ("ops@acme.test", "jira-api-token")
    assert requests.get(f"{fake_jira.url}/rest/api/3/myself", auth=auth, timeout=5).status_code == 200
    bad = requests.post(
        f"{fake_jira.url}/rest/api/3/issue", json={"fields": "not an object"}, auth=auth, timeout=5
    )
    assert bad.status_code == 400
    assert fake_jira.spec_errors
    fake_jira.spec_errors.clear()


def test_wrong_credentials_get_401(fake_jira):
    response = requests.get(f"{fake_jira.url}/rest/api/3/myself", auth=("ops@acme.test", "nope"), timeout=5)
    assert response.status_code == 401
