"""Rollback through the API against a fake Jira: the dry run (the default) shows the plan and writes nothing;
confirming queues it for the worker (202 with the event to poll), which undoes it, recorded as the admin records
it; a later edit in Jira is a 409 with the differences (their values only with audit.view_sensitive_data) and is
overwritten only with `overwrite`."""

import json

import pytest
from django.contrib.admin.models import LogEntry

from connector import http, transport
from connector.models import IssueMapping
from connector.sandbox.freshbooks_records import put
from connector.schedules import ROLLBACK
from tests.processing import issues, process, run_queued

pytestmark = pytest.mark.django_db
INVOICE = 987654
UPDATED = "Invoice ACM0002 for Gordon Shumway: 99.00 CAD"
ORIGINAL = "Invoice ACM0002 for Gordon Shumway: 41.94 CAD"


def body(response):
    return json.loads(response.content)


@pytest.fixture
def created(connected, fb, jira):
    event = process(connected, "invoice.create", INVOICE)
    assert event.status == "succeeded" and event.jira_key == "FIN-1"
    return event


@pytest.fixture
def updated(created, connected, fb, jira):
    """FIN-1 updated by an invoice.update event (41.94 → 99.00)."""
    mapping = IssueMapping.objects.get(tenant=connected, event="invoice.create")
    mapping.pk, mapping.event, mapping.name = None, "invoice.update", "Invoice updated"
    mapping.save()
    put(fb, "invoice", {**fb.samples["invoice"], "amount": {"amount": "99.00", "code": "CAD"}})
    event = process(connected, "invoice.update", INVOICE)
    assert issues(jira)[0]["fields"]["summary"] == UPDATED
    return event


@pytest.fixture
def sent(monkeypatch):
    """Every vendor request sent: (method, whether the code held a transaction open then)."""
    seen, real = [], http.send

    def spy(method, url, **kwargs):
        seen.append((method, transport.open_transaction()))
        return real(method, url, **kwargs)

    monkeypatch.setattr(http, "send", spy)
    return seen


def test_dry_run_first_then_confirm_queues_and_the_worker_deletes_the_issue(api, created, jira, users, sent):
    url = f"/api/v1/events/{created.pk}/rollback/"
    assert api.post(url, "viewer", {"dry_run": False}).status_code == 403

    plan = api.post(url, "operator")

    assert plan.status_code == 200
    assert body(plan) == {"event": created.pk, "dry_run": True, "plan": ["deletes issue FIN-1"], "refused": "",
                          "done": [], "status": "succeeded"}  # fmt: skip
    assert len(issues(jira)) == 1 and not jira.calls("DELETE")

    done = api.post(url, "operator", {"dry_run": False})

    assert done.status_code == 202, done.content
    poll = f"http://testserver/api/v1/events/{created.pk}/"
    assert body(done) == {"event": created.pk, "plan": ["deletes issue FIN-1"], "overwrite": False,
                          "status": "succeeded", "url": poll,
                          "status_detail": "Rollback requested by api:operator: queued for the worker."}  # fmt: skip
    assert done["Location"] == poll
    assert sent and sent == [("GET", False)] * len(sent), (
        "the request only reads Jira, outside any transaction"
    )
    assert len(issues(jira)) == 1 and not jira.calls("DELETE"), "nothing is deleted during the web request"

    assert run_queued(ROLLBACK) == ["Rolled back by api:operator: deleted issue FIN-1."]

    assert issues(jira) == []
    polled = body(api.get(poll, "operator"))
    assert polled["status"] == "rolled_back"
    assert polled["status_detail"] == "Rolled back by api:operator: deleted issue FIN-1."
    created.refresh_from_db()
    assert created.status == "rolled_back" and "Rolled back by api:operator" in created.status_detail
    assert created.attempt_set.filter(action__startswith="DELETE", actor="api:operator").exists()
    assert LogEntry.objects.get(object_id=str(created.pk)).user == users["operator"]

    again = api.post(url, "operator", {"dry_run": False})
    assert again.status_code == 409
    assert body(again) == {"detail": "Not rolled back: it is already rolled back.", "code": "refused"}
    assert body(api.post(url, "operator"))["refused"] == "it is already rolled back"


@pytest.mark.parametrize("role, values_shown", [("operator", True), ("viewer+rollback", False)])
def test_a_later_edit_in_jira_is_a_conflict_overwritten_only_when_confirmed(
    api, updated, jira, users, tokens, role, values_shown
):
    from django.contrib.auth.models import Permission

    if role == "viewer+rollback":  # may roll back, but not see decrypted values
        users["viewer"].user_permissions.add(Permission.objects.get(codename="rollback_event"))
        role = "viewer"
    jira.state["issues"]["FIN-1"]["fields"]["summary"] = "Renamed by a person in Jira"
    url = f"/api/v1/events/{updated.pk}/rollback/"
    puts = len(jira.calls("PUT"))

    conflict = api.post(url, role, {"dry_run": False})

    assert conflict.status_code == 409
    answer = body(conflict)
    assert answer["code"] == "conflict" and "confirm to overwrite" in answer["detail"]
    (difference,) = answer["differences"]
    assert difference["object"] == "FIN-1" and difference["field"] == "summary"
    if values_shown:
        assert (difference["ours"], difference["now"]) == (UPDATED, "Renamed by a person in Jira")
    else:
        assert difference["ours"] is difference["now"] is None
        assert (
            "Renamed by a person" not in conflict.content.decode()
            and UPDATED not in conflict.content.decode()
        )
    assert len(jira.calls("PUT")) == puts  # nothing written
    updated.refresh_from_db()
    assert updated.status == "succeeded"

    done = api.post(url, role, {"dry_run": False, "overwrite": True})

    assert done.status_code == 202 and body(done)["overwrite"] is True
    assert run_queued(ROLLBACK) == [
        f"Rolled back by api:{role} over changes made in Jira since: restored summary, description, labels of FIN-1."
    ]
    assert issues(jira)[0]["fields"]["summary"] == ORIGINAL
    updated.refresh_from_db()
    assert "over changes made in Jira since" in updated.status_detail


def test_a_jira_failure_in_the_worker_keeps_the_event_and_says_why(api, created, jira):
    jira.state["fail_next"] = [("DELETE", r"/issue/", 500)] * 10  # Jira fails every retry

    answer = api.post(f"/api/v1/events/{created.pk}/rollback/", "administrator", {"dry_run": False})
    assert answer.status_code == 202, answer.content
    run_queued(ROLLBACK)

    polled = body(api.get(f"/api/v1/events/{created.pk}/", "administrator"))
    assert polled["status"] == "succeeded"
    assert polled["status_detail"].startswith("Rollback by api:administrator failed at issue FIN-1: ")
    assert len(issues(jira)) == 1


def test_jira_unreachable_for_the_check_is_502_and_nothing_is_queued(api, created, jira):
    jira.state["fail_next"] = [("GET", r"/issue/FIN-1", 500)] * 10

    answer = api.post(f"/api/v1/events/{created.pk}/rollback/", "administrator", {"dry_run": False})

    assert answer.status_code == 502 and body(answer)["code"] == "vendor_failed", answer.content
    assert body(answer)["detail"].startswith("Not rolled back: could not compare with Jira: ")
    assert not run_queued(ROLLBACK) and len(issues(jira)) == 1
