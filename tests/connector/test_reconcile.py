"""Reconcile and backfill against the loopback fakes: lost deliveries found once, watermark, dry run, paging."""

import copy
from datetime import UTC, datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ

from audit.models import Attempt, Event
from connector.models import Link, ReconcileState, WorklogRule
from connector.reconcile import reconcile, reconcile_due
from connector.sandbox.freshbooks_callbacks import delivery_fields, signed_delivery
from connector.sandbox.freshbooks_lists import install_list_routes
from connector.sandbox.freshbooks_records import put
from tenants.models import FreshBooksAccount, FreshBooksWebhook
from tests.processing import created_issues, issues, run_queued, worklogs

EASTERN = ZoneInfo("America/New_York")
INVOICE, ENTRY = "987654", "123456"  # the fixture invoice and time entry (project 654321)
PROCESS = "connector.tasks.process_event"


def run(*args):
    out = StringIO()
    call_command("reconcile", *args, stdout=out)
    return out.getvalue()


def eastern_now(minutes_ago=0):
    return (timezone.now() - timedelta(minutes=minutes_ago)).astimezone(EASTERN).strftime("%Y-%m-%d %H:%M:%S")


def jira_writes(jira):
    return [call for call in jira.requests if call.method in ("POST", "PUT", "DELETE")]


@pytest.fixture
def lost(connected, fb, jira):
    """The fixture invoice and time entry were changed in FreshBooks a minute ago; their deliveries were lost."""
    install_list_routes(fb)
    fb.samples["invoice"]["updated"] = eastern_now(1)
    put(fb, "invoice", fb.samples["invoice"])
    entry = {**fb.samples["time_entry"], "updated_at": (timezone.now() - timedelta(minutes=1)).isoformat()}
    put(fb, "time_entry", entry)
    jira.state["issues"]["FIN-7"] = {"id": "30000", "key": "FIN-7", "fields": {"summary": "Work"},
                                     "properties": {}, "hidden_searches": 0, "created": 0}  # fmt: skip
    WorklogRule.objects.create(
        tenant=connected, match_kind="project", match_value="654321", issue_key="FIN-7"
    )
    return connected


def deliver(client, name, object_id):
    """A signed FreshBooks delivery through POST /webhooks/freshbooks/ (the verified callback of its event)."""
    account = FreshBooksAccount.objects.get()
    FreshBooksWebhook.objects.get_or_create(
        account=account, callback_id=hash(name) % 10**6, event=name,
        defaults={"uri": "https://x.test/", "verifier": "the-verifier", "verified": True},
    )  # fmt: skip
    fields = delivery_fields(name, str(object_id), account.account_id, account.business_id)
    body, headers = signed_delivery(fields, "the-verifier")
    response = client.post(
        "/webhooks/freshbooks/", data=body, content_type="application/x-www-form-urlencoded", headers=headers
    )
    assert response.status_code == 200, response.content
    return response.json()


def drain_bulk():
    """Run the bulk lane's batches (connector.bulk) as a worker would, until none is queued: {status: count}."""
    totals = {}
    for _ in range(50):
        ran = run_queued("connector.bulk.process_batch")
        if not ran:
            return totals
        for statuses in ran:
            for status, count in statuses.items():
                totals[status] = totals.get(status, 0) + count
    raise AssertionError("the bulk lane did not drain")


@pytest.mark.django_db
def test_reconcile_creates_the_lost_issue_and_worklog_once(lost, fb, jira, client):
    out = run("--tenant", "acme")  # holds the events in the bulk lane, which feeds them to the worker
    assert Event.objects.filter(source="reconcile", wait_reason="its turn (bulk work)").count() == 2
    assert drain_bulk() == {"succeeded": 2}, list(Event.objects.values_list("name", "status_detail"))
    assert len(jira.calls("POST", r"/issue/bulk$")) == 1 and not created_issues(jira)

    (issue,) = [i for i in issues(jira) if i["key"] != "FIN-7"]
    assert len(worklogs(jira)) == 1
    events = Event.objects.filter(source="reconcile").order_by("name")
    assert [(e.name, e.object_id, e.status) for e in events] == [
        ("invoice.create", INVOICE, "succeeded"),
        ("time_entry.create", ENTRY, "succeeded"),
    ]
    assert events[0].jira_key == issue["key"] and "created 2 event(s)" in out
    assert "invoice page 1/1" in out and "time_entry page 1/1" in out
    state = ReconcileState.objects.get(tenant=lost)
    assert state.last_result == "ok" and state.watermark is not None and state.last_actor == "command"

    again = run("--tenant", "acme", "--sync")  # overlap lists them again: the ledger knows them

    assert "listed 2 record(s), 2 already known, created 0 event(s)" in again
    assert Event.objects.filter(source="reconcile").count() == 2
    # The lost deliveries turn up after all, through the real endpoint, and a worker processes them.
    assert deliver(client, "invoice.create", INVOICE)["status"] == "queued"
    assert deliver(client, "time_entry.create", ENTRY)["status"] == "queued"
    assert run_queued(PROCESS) == ["succeeded", "succeeded"]
    assert len(issues(jira)) == 2 and not created_issues(jira) and len(worklogs(jira)) == 1
    assert len(jira.calls("POST", r"/worklog$")) == 1


@pytest.mark.django_db
def test_a_webhook_first_then_reconcile_creates_nothing_more(lost, fb, jira, client):
    deliver(client, "invoice.create", INVOICE)
    assert run_queued(PROCESS) == ["succeeded"]

    out = run("--tenant", "acme", "--sync", "--kinds", "invoice")

    assert "listed 1 record(s), 1 already known, created 0 event(s)" in out
    assert len(created_issues(jira)) == 1 and not Event.objects.filter(source="reconcile").exists()


@pytest.mark.django_db
def test_an_open_or_later_event_counts_as_known_but_an_older_one_does_not(lost, fb, jira):
    queued = Event.objects.create(tenant=lost, name="invoice.update", object_id=INVOICE, status="queued")
    assert reconcile(lost, kinds=["invoice"], dry_run=True).created == []
    queued.status = "failed"
    queued.save()  # received after the record's update: seen, replay it instead
    assert reconcile(lost, kinds=["invoice"], dry_run=True).created == []
    Event.objects.filter(pk=queued.pk).update(received_at=timezone.now() - timedelta(hours=1))
    (found,) = reconcile(lost, kinds=["invoice"], dry_run=True).created
    assert found[:2] == ("invoice.create", INVOICE)


@pytest.mark.django_db
def test_dry_run_writes_nothing_and_prints_each_rendered_summary(lost, fb, jira):
    tables = (Event, Attempt, Link, ReconcileState, OrmQ)
    before = {model: list(model.objects.values()) for model in tables}

    out = run("--tenant", "acme", "--dry-run")

    assert {model: list(model.objects.values()) for model in tables} == before
    assert jira_writes(jira) == []
    assert "Would create invoice.create 987654: issue in FIN: “Invoice " in out
    assert "Would create time_entry.create 123456: worklog of 2.73 h on FIN-7" in out
    assert "would create 2 event(s)" in out


@pytest.mark.django_db
def test_a_failed_pass_leaves_the_watermark_and_exits_with_an_error(lost, fb, jira):
    mark = timezone.now() - timedelta(minutes=30)
    ReconcileState.objects.create(tenant=lost, watermark=mark)
    fb.state["list_errors"] = [(1, 403)]  # FreshBooks refuses the listing (e.g. a missing scope)

    with pytest.raises(CommandError, match="watermark was left where it was"):
        run("--tenant", "acme", "--sync", "--kinds", "invoice")

    state = ReconcileState.objects.get(tenant=lost)
    assert state.watermark == mark and state.last_result == "failed"
    assert "403" in state.last_detail and issues(jira) == [issues(jira)[0]]  # only FIN-7, nothing created


@pytest.mark.django_db
def test_429_and_5xx_are_backed_off_and_the_pass_goes_on(lost, fb, jira):
    fb.state["list_errors"] = [429, 503]
    waits = []

    result = reconcile(lost, kinds=["invoice"], sync=True, actor="test", sleep=waits.append)

    assert result.ok and len(result.created) == 1 and len(waits) == 2  # 429 in the client, 503 per page
    assert all(0 < wait <= 30 for wait in waits)
    listings = fb.calls("GET", r"/invoices/invoices$")
    assert [c.query["per_page"] for c in listings] == [["100"]] * 3
    assert listings[0].query["search[updated_min]"][0] <= eastern_now(60)  # watermark minus the overlap


@pytest.mark.django_db
def test_backfill_of_1000_invoices_over_10_pages_creates_1000_issues_once(connected, fb, jira):
    install_list_routes(fb)
    with fb.lock:
        fb.state["records"]["invoice"] = {}
    for number in range(1, 1001):
        invoice = copy.deepcopy(fb.samples["invoice"])
        invoice.update(
            id=number, invoiceid=number, invoice_number=f"{number:05d}", updated="2020-03-01 12:00:00"
        )
        put(fb, "invoice", invoice)

    out = run("--tenant", "acme", "--since", "2020-01-01", "--kinds", "invoice", "--sync")

    assert len(created_issues(jira)) == 1000
    assert len({issue["fields"]["summary"] for issue in issues(jira)}) == 1000
    assert [f"invoice page {page}/10" in out for page in range(1, 11)] == [True] * 10
    assert "created 1000 event(s)" in out
    assert Link.objects.filter(tenant=connected, state="created").count() == 1000

    again = run("--tenant", "acme", "--since", "2020-01-01", "--kinds", "invoice", "--sync")

    assert "1000 already known, created 0 event(s)" in again
    assert len(created_issues(jira)) == 1000


@pytest.mark.django_db
def test_bad_arguments_are_clear_command_errors(connected):
    for args, message in (
        (("--tenant", "nope"), "No tenant with slug"),
        (("--tenant", "acme", "--since", "yesterday"), "not an ISO 8601"),
        (("--tenant", "acme", "--kinds", "invoice,estimate"), "--kinds takes"),
    ):
        with pytest.raises(CommandError, match=message):
            run(*args)
    with pytest.raises(CommandError):
        run("--since", "2020-01-01")  # neither --tenant nor --all


@pytest.mark.django_db
def test_the_schedule_queues_only_tenants_whose_interval_has_elapsed(connected, fb):
    from tenants.models import Tenant

    Tenant.objects.create(name="Unconnected", slug="bare")  # no FreshBooks account: never reconciled
    assert reconcile_due() == ["acme"]
    state = ReconcileState.objects.get(tenant=connected)
    state.last_started_at, state.interval_minutes = timezone.now() - timedelta(minutes=10), 15
    state.save()
    assert reconcile_due() == []
    state.interval_minutes = 5
    state.save()
    assert reconcile_due() == ["acme"]
    assert OrmQ.objects.count() == 2


@pytest.mark.django_db
def test_admin_shows_the_watermark_and_result_and_reconciles_now(staff_client, connected):
    mark = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    ReconcileState.objects.create(tenant=connected, watermark=mark, last_result="failed",
                                  last_detail="failed: FreshBooks GET → 403")  # fmt: skip
    url = reverse("admin:connector_reconcilestate_changelist")

    page = staff_client.get(url).content.decode()

    assert "Acme Corp" in page and "2024-05-01" in page and "FreshBooks GET → 403" in page
    response = staff_client.post(
        url, {"action": "reconcile_now", "_selected_action": [connected.reconcile.pk]}, follow=True
    )
    assert "Queued a reconcile of Acme Corp" in response.content.decode()
    (task,) = OrmQ.objects.all()
    assert task.task["func"] == "connector.reconcile.reconcile_task"
    assert task.task["kwargs"] == {"actor": "admin:operator"}


@pytest.mark.django_db
def test_only_a_pass_over_every_mapped_kind_from_the_watermark_moves_it(lost, fb, jira):
    partial = run("--tenant", "acme", "--kinds", "invoice", "--sync")

    assert "watermark kept (a partial pass)" in partial
    assert ReconcileState.objects.get(tenant=lost).watermark is None
    before = timezone.now()
    run("--tenant", "acme", "--sync")
    mark = ReconcileState.objects.get(tenant=lost).watermark
    assert mark >= before

    later = run("--tenant", "acme", "--since", (mark + timedelta(days=1)).isoformat())

    assert "watermark kept" in later and ReconcileState.objects.get(tenant=lost).watermark == mark


@pytest.mark.django_db
def test_reconcile_now_is_offered_to_operators_only(client, connected):
    from django.contrib.auth.models import Group, Permission, User

    viewer = User.objects.create_user("viewer", password="pw-123456789", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_reconcilestate"))
    client.force_login(viewer)
    url = reverse("admin:connector_reconcilestate_changelist")

    page = client.get(url)

    assert page.status_code == 200 and "Acme Corp" in page.content.decode()
    assert "reconcile_now" not in page.content.decode()
    client.post(url, {"action": "reconcile_now", "_selected_action": [connected.reconcile.pk]})
    assert OrmQ.objects.count() == 0

    operator = User.objects.create_user("op", password="pw-123456789", is_staff=True)
    operator.groups.add(Group.objects.get(name="operator"))  # the suggested group, completed by migration
    client.force_login(operator)
    assert "reconcile_now" in client.get(url).content.decode()
    assert "Failed events" in client.get(reverse("admin:index")).content.decode()
    client.post(url, {"action": "reconcile_now", "_selected_action": [connected.reconcile.pk]})
    assert OrmQ.objects.count() == 1


@pytest.mark.django_db
def test_a_pass_is_counted_in_metrics_and_shown_on_the_health_panel(lost, fb, jira, client, staff_user):
    from tests.metrics_helpers import moved, parse

    def scrape():
        return parse(client.get("/metrics").content.decode())

    before = scrape()
    run("--tenant", "acme", "--sync")
    fb.state["list_errors"] = [(1, 403)]
    with pytest.raises(CommandError):
        run("--tenant", "acme")
    after = scrape()

    assert moved(before, after, "mlc_reconcile_passes_total", result="ok") == 1
    assert moved(before, after, "mlc_reconcile_passes_total", result="failed") == 1
    assert moved(before, after, "mlc_reconcile_events_found_total") == 2
    client.force_login(staff_user)
    row = client.get("/admin/").content.decode().split('data-tenant="acme"')[1].split("</tr>")[0]
    assert 'class="reconcile">failed at ' in row
