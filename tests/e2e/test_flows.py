"""End to end with the real processes (see conftest): a customer's path, duplicates and concurrency, a Jira
outage then a replay."""

import subprocess
import sys

from audit.models import Event
from connector.models import WorklogRule
from tenants.models import ConnectionStatus, FreshBooksWebhook
from tests.e2e.conftest import add_invoices, concurrently
from tests.e2e.processes import ROOT


def test_connect_register_and_deliver_duplicates_and_concurrent_ones(make_stack, jira, jira_tenant):
    WorklogRule.objects.create(
        tenant=jira_tenant, match_kind="project", match_value="654321", issue_key="FIN-7"
    )
    jira.state["issues"]["FIN-7"] = {"id": "30001", "key": "FIN-7", "fields": {"summary": "Time"},
                                     "properties": {}, "hidden_searches": 0, "created": 0}  # fmt: skip
    stack = make_stack()
    account = stack.tenant.freshbooks_accounts.get()
    assert account.status == ConnectionStatus.CONNECTED and account.business_name == "Acme Books"
    assert set(FreshBooksWebhook.objects.filter(verified=True).values_list("event", flat=True)) >= {
        "invoice.create",
        "time_entry.create",
    }
    add_invoices(stack.fb, range(700001, 700006))

    # Five invoices, each delivered twice in a row (FreshBooks retries), then one delivered 12 times at once.
    answers = []
    for n in range(700001, 700006):
        answers += [stack.deliver("invoice.create", n), stack.deliver("invoice.create", n)]
    answers += concurrently(stack.deliver, [("invoice.create", 987654)] * 12, threads=12)
    answers.append(stack.deliver("time_entry.create", 123456))
    assert [a.status_code for a in answers] == [200] * len(answers)
    outcomes = [a.json()["status"] for a in answers]
    # The same signed delivery again is acknowledged as a replay (or recorded as a duplicate while open).
    assert outcomes.count("queued") == 7 and set(outcomes) <= {"queued", "replay", "duplicate"}, outcomes

    events = stack.wait_processed(count=7)
    by_object = {}
    for event in events:
        by_object.setdefault((event.name, event.object_id), []).append(event)
    assert len(by_object) == 7
    for (name, object_id), found in by_object.items():
        done = [e for e in found if e.status == Event.Status.SUCCEEDED]
        assert len(done) == 1, (name, object_id, [(e.status, e.status_detail) for e in found])
        assert all(e.status in (Event.Status.SUCCEEDED, Event.Status.DUPLICATE) for e in found), found
    issues = stack.issues()
    assert len(issues) == 6, [i["fields"]["summary"] for i in issues]  # one per invoice, none twice
    assert {i["fields"]["summary"] for i in issues} == {"Invoice ACM0002 for Gordon Shumway: 41.94 CAD"}
    assert len(stack.worklogs()) == 1


def test_jira_outage_then_replay_ends_every_event_succeeded_once(make_stack, jira):
    stack = make_stack()
    add_invoices(stack.fb, range(710001, 710005))
    jira.state["fail_next"] = [("POST", r"/rest/api/3/issue$", 503)] * 50  # Jira is down for writes

    for n in range(710001, 710005):
        assert stack.deliver("invoice.create", n).status_code == 200
    events = stack.wait_processed(count=4)
    assert {e.status for e in events} == {Event.Status.FAILED}  # visible, not retried (auto_retry is off)
    assert all("503" in e.status_detail or "injected" in e.status_detail for e in events), [
        e.status_detail for e in events
    ]
    assert stack.issues() == []

    jira.state["fail_next"] = []  # Jira is back: the operator replays the failed events
    replay = subprocess.run(
        [sys.executable, "manage.py", "replay_events", "--tenant", "acme", "--status", "failed"],
        cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    events = stack.wait_processed(count=4)
    assert {e.status for e in events} == {Event.Status.SUCCEEDED}, [
        (e.status, e.status_detail) for e in events
    ]
    assert len(stack.issues()) == 4
