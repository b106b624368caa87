"""The bulk lane (connector.bulk): backfill and reconcile create issues 50 at a time through the ledger, behind
live deliveries, tenants taking turns."""

import pytest
from django_q.models import OrmQ

from audit.models import Event
from connector import bulk, waiting
from connector.jira.client import JiraClient
from connector.ledger_bulk import create_issues
from connector.models import Link
from connector.replay import replay
from connector.sandbox.freshbooks_records import put
from connector.tasks import process_event
from tenants.models import JiraSite, Tenant
from tests.processing import connected_account, issues, make_event, run_queued

BATCH_TASK = "connector.bulk.process_batch"


def invoices(fb, ids):
    for n in ids:
        put(fb, "invoice", {**fb.samples["invoice"], "id": n, "invoiceid": n})


def hold(tenant, ids, source="reconcile"):
    events = []
    for n in ids:
        event = make_event(tenant, "invoice.create", n)
        Event.objects.filter(pk=event.pk).update(source=source)
        events.append(event)
    bulk.hold(Event.objects.filter(pk__in=[e.pk for e in events]).order_by("id"))
    return events


def queued_batches():
    return [item.task["args"][0] for item in OrmQ.objects.order_by("id") if item.task["func"] == BATCH_TASK]


def drain():
    totals = {}
    for _ in range(100):
        ran = run_queued(BATCH_TASK)
        if not ran:
            return totals
        for statuses in ran:
            for status, count in statuses.items():
                totals[status] = totals.get(status, 0) + count
    raise AssertionError("the bulk lane did not drain")


@pytest.mark.django_db
def test_a_backfill_of_120_invoices_takes_three_jira_write_requests_and_creates_each_once(
    connected, fb, jira
):
    invoices(fb, range(1, 121))
    held = hold(connected, range(1, 121))
    assert {e.status for e in Event.objects.filter(pk__in=[e.pk for e in held])} <= {"waiting", "queued"}
    assert Event.objects.get(pk=held[-1].pk).status_detail == "Waiting for its turn (bulk work)"

    assert drain() == {"succeeded": 120}
    writes = [r for r in jira.requests if r.method in ("POST", "PUT", "DELETE")]
    assert [len(r.json()["issueUpdates"]) for r in writes] == [50, 50, 20]
    assert len(issues(jira)) == 120 and Link.objects.filter(state="created").count() == 120
    event = Event.objects.get(pk=held[0].pk)
    assert event.jira_key and "bulk create of 50" in event.status_detail and event.attempts == 1

    replay(Event.objects.filter(pk__in=[e.pk for e in held]), "command:ops")  # 120 > 50: through the lane
    assert drain() == {"succeeded": 120}
    assert len(issues(jira)) == 120  # adopted from the ledger, nothing written twice


@pytest.mark.django_db
def test_per_element_errors_fail_their_own_event_and_release_only_their_claim(connected, jira):
    site = JiraSite.objects.get(tenant=connected)
    good = {"project": {"key": "FIN"}, "issuetype": {"name": "Task"}, "summary": "ok"}
    bad = {**good, "project": {"key": "NOPE"}}
    events = [make_event(connected, "invoice.create", n) for n in (1, 2, 3)]
    results = create_issues(
        client=JiraClient(site), tenant=connected, object_type="invoice",
        items=[("1", good, events[0]), ("2", bad, events[1]), ("3", good, events[2])],
    )  # fmt: skip
    assert [results[k][0] for k in ("1", "2", "3")] == ["created", "failed", "created"]
    assert "project: Specify a valid project ID or key" in results["2"][1]
    assert set(Link.objects.values_list("object_id", "state")) == {("1", "created"), ("3", "created")}
    keys = {issue["key"]: issue for issue in issues(jira)}
    assert results["3"][1].jira_issue_key in keys and len(keys) == 2


@pytest.mark.django_db
def test_an_unknown_outcome_leaves_every_element_in_doubt_and_the_label_search_adopts(connected, fb, jira):
    invoices(fb, (1, 2, 3))
    jira.state["fail_next"] = [("POST", r"/issue/bulk$", 503, True)]  # applied, then a 5xx
    held = hold(connected, (1, 2, 3))
    assert drain() == {"failed": 3}
    assert set(Link.objects.values_list("state", flat=True)) == {"in_doubt"}
    assert "503" in Event.objects.get(pk=held[0].pk).status_detail

    for event in held:  # a replay of each (or auto retry) looks in Jira first
        Event.objects.filter(pk=event.pk).update(status="queued")
        assert process_event(event.pk) == "succeeded"
    assert len(issues(jira)) == 3 and not jira.calls("POST", r"/issue$")


@pytest.mark.django_db
def test_tenants_take_turns_and_live_deliveries_are_never_behind_more_than_one_batch(connected, fb, jira):
    other = Tenant.objects.create(name="Beta", slug="beta")
    connected_account(other, business_id="7002")
    site = JiraSite.objects.get(tenant=connected)
    JiraSite.objects.create(tenant=other, base_url=site.base_url, email=site.email, api_token=site.api_token,
                            status=site.status)  # fmt: skip
    from connector.defaults import create_default_mappings

    create_default_mappings(other, "FIN")
    invoices(fb, range(1, 131))
    big = hold(connected, range(1, 121))  # a backfill of 120
    small = hold(other, range(121, 131))  # a catch-up of 10

    assert len(queued_batches()) == 1  # one batch in flight (Q_WORKERS 2: one worker left for live work)
    live = make_event(connected, "invoice.create", 130)
    from connector.tasks import queue_event

    queue_event(live.pk)  # a live delivery: straight to the broker, behind at most that one batch
    order = []
    for _ in range(10):
        ids = queued_batches()
        if not ids:
            break
        order.append(Event.objects.get(pk=ids[0][0]).tenant.slug)
        run_queued(BATCH_TASK)
    assert order == ["acme", "beta", "acme", "acme"]
    assert Event.objects.filter(pk__in=[e.pk for e in big + small], status="succeeded").count() == 130
    assert waiting.BULK == "its turn (bulk work)"
