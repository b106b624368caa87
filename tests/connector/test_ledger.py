"""Exactly-once Jira writes through the ledger, against the loopback fake Jira Cloud (spec-validated)."""

import time

import pytest
from django.db import connection

from audit.models import Attempt
from connector import ledger
from connector.jira.adf import to_adf
from connector.jira.client import JiraClient, JiraError
from connector.models import IssueMapping, Link
from connector.render import render_fields
from tenants.models import JiraSite, Tenant
from tests.factories import EventFactory, JiraSiteFactory
from tests.threads import run_in_threads

FIELDS = {"project": {"key": "FIN"}, "issuetype": {"name": "Task"}, "summary": "Invoice 0042",
          "labels": ["freshbooks", "invoice"]}  # fmt: skip
WORKLOG = {
    "started": "2026-03-02T14:05:00.000+0000",
    "timeSpentSeconds": 5400,
    "comment": to_adf("Design review"),
}
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs row locks (SELECT ... FOR UPDATE) and concurrent writers; SQLite serialises whole-database "
    "writes. CI runs these on PostgreSQL.",
)


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def site(tenant, fake_jira):
    return JiraSiteFactory(tenant=tenant, base_url=fake_jira.url)


@pytest.fixture
def event(tenant):
    return EventFactory(tenant=tenant)


@pytest.fixture
def jira_client(site, sleeps, event):
    return JiraClient(site, event=event, sleep=sleeps)


def ensure(jira_client, tenant, event=None, object_id="42", fields=FIELDS):
    return ledger.ensure_issue(
        client=jira_client,
        tenant=tenant,
        object_type="invoice",
        object_id=object_id,
        fields=fields,
        event=event,
    )


def issues(fake_jira):
    return list(fake_jira.state["issues"].values())


def creates(fake_jira):
    return fake_jira.calls("POST", r"/issue$")


def test_label_is_deterministic_and_jira_safe(tenant):
    assert ledger.issue_label(tenant, "invoice", 42) == "mlc-acme-invoice-42"
    assert ledger.issue_label(tenant, "invoice", 'a "b"\n') == "mlc-acme-invoice-a__b_"


def test_create_sends_label_and_property_in_the_same_request(jira_client, tenant, event, fake_jira):
    link = ensure(jira_client, tenant, event)
    assert link.state == Link.State.CREATED and link.jira_issue_key == "FIN-1" and link.jira_issue_id
    assert link.dedupe_key == f"{tenant.pk}:invoice:42:issue" and link.event == event
    (issue,) = issues(fake_jira)
    assert issue["fields"]["labels"] == ["freshbooks", "invoice", "mlc-acme-invoice-42"]
    assert issue["properties"] == {
        "ml-connector": {"tenant": "acme", "object_type": "invoice", "object_id": "42"}
    }
    assert jira_client.issue_property("FIN-1", "ml-connector")["object_id"] == "42"
    assert Attempt.objects.filter(event=event, action="POST /rest/api/3/issue", http_status=201).count() == 1


def test_five_deliveries_one_issue(jira_client, tenant, fake_jira):
    keys = {ensure(jira_client, tenant).jira_issue_key for _ in range(5)}
    assert keys == {"FIN-1"}
    assert len(issues(fake_jira)) == 1 and len(creates(fake_jira)) == 1
    assert Link.objects.count() == 1


def test_applied_but_answered_500_then_replay_adopts_the_issue(jira_client, tenant, event, fake_jira, sleeps):
    fake_jira.state["fail_next"] = [("POST", r"/issue$", 500, True)]
    with pytest.raises(JiraError) as raised:
        ensure(jira_client, tenant, event)
    assert raised.value.ambiguous
    link = Link.objects.get()
    assert link.state == Link.State.IN_DOUBT
    # The attempt survived: it was committed with the in-doubt state.
    assert Attempt.objects.filter(event=event, action="POST /rest/api/3/issue", http_status=500).exists()

    link = ensure(jira_client, tenant, event)
    assert link.state == Link.State.CREATED and link.jira_issue_key == "FIN-1"
    assert len(issues(fake_jira)) == 1 and len(creates(fake_jira)) == 1
    assert len(fake_jira.calls("GET", r"/search/jql$")) == 1 and sleeps == []


def test_500_not_applied_then_replay_searches_with_lag_allowance_and_creates(
    jira_client, tenant, fake_jira, sleeps
):
    fake_jira.state["fail_next"] = [("POST", r"/issue$", 500)]
    with pytest.raises(JiraError):
        ensure(jira_client, tenant)
    link = ensure(jira_client, tenant)
    assert link.state == Link.State.CREATED
    searches = fake_jira.calls("GET", r"/search/jql$")
    assert len(searches) == 1 + len(ledger.SEARCH_RETRY_DELAYS)
    assert sleeps == list(ledger.SEARCH_RETRY_DELAYS)
    assert len(issues(fake_jira)) == 1 and len(creates(fake_jira)) == 2


def test_search_lag_the_in_doubt_resolution_waits_for_the_index(jira_client, tenant, fake_jira, sleeps):
    fake_jira.state.update(search_lag=2, fail_next=[("POST", r"/issue$", 502, True)])
    with pytest.raises(JiraError):
        ensure(jira_client, tenant)
    link = ensure(jira_client, tenant)
    assert link.jira_issue_key == "FIN-1"
    assert len(fake_jira.calls("GET", r"/search/jql$")) == 3 and sleeps == [1.0, 2.0]
    assert len(issues(fake_jira)) == 1


def test_read_timeout_after_sending_is_in_doubt(jira_client, tenant, fake_jira, settings):
    fake_jira.state["create_delay"] = 1.0
    settings.HTTP_TIMEOUT = 0.3
    with pytest.raises(JiraError, match="No answer from Jira"):
        ensure(jira_client, tenant)
    assert Link.objects.get().state == Link.State.IN_DOUBT
    settings.HTTP_TIMEOUT = 10
    fake_jira.state["create_delay"] = 0
    time.sleep(1.0)  # the fake finishes the create it was given
    assert ensure(jira_client, tenant).jira_issue_key == "FIN-1"
    assert len(issues(fake_jira)) == 1


def test_rate_limited_create_is_waited_out_and_sent_again(jira_client, tenant, fake_jira, sleeps):
    fake_jira.state["fail_next"] = [("POST", r"/issue$", 429)]  # 429 is not applied: re-sending is safe
    link = ensure(jira_client, tenant)
    assert link.state == Link.State.CREATED and len(sleeps) == 1 and 1.0 <= sleeps[0] <= 1.5  # Retry-After: 1
    assert len(issues(fake_jira)) == 1 and len(creates(fake_jira)) == 2


def test_rejection_releases_the_claim_with_jiras_message(jira_client, tenant, fake_jira, sleeps):
    with pytest.raises(JiraError) as raised:
        ensure(jira_client, tenant, fields={**FIELDS, "labels": ["has space"]})
    assert "labels: The label 'has space' can't contain spaces." in str(raised.value)
    assert not raised.value.ambiguous and not Link.objects.exists()
    assert ensure(jira_client, tenant).state == Link.State.CREATED
    assert fake_jira.calls("GET", r"/search/jql$") == []  # nothing in doubt: no search needed


def test_a_rejection_after_an_unknown_outcome_keeps_the_link_in_doubt(jira_client, tenant, fake_jira, sleeps):
    fake_jira.state["fail_next"] = [("POST", r"/issue$", 500)]
    with pytest.raises(JiraError):
        ensure(jira_client, tenant)
    with pytest.raises(JiraError):
        ensure(jira_client, tenant, fields={**FIELDS, "summary": ""})
    assert Link.objects.get().state == Link.State.IN_DOUBT


def test_a_site_needing_reconnect_leaves_no_claim(jira_client, tenant, site):
    from tenants.tokens import ReconnectRequired

    site.auth_method, site.status = JiraSite.AuthMethod.OAUTH2, "needs_reconnect"
    site.save()
    with pytest.raises(ReconnectRequired):
        ensure(jira_client, tenant)
    assert not Link.objects.exists()


def test_a_link_left_pending_by_a_dead_worker_is_searched_first(jira_client, tenant, fake_jira):
    created = jira_client.create_issue(
        {**FIELDS, "labels": ["mlc-acme-invoice-42"]}, properties={"ml-connector": {"object_id": "42"}}
    )
    Link.objects.create(
        tenant=tenant, dedupe_key=f"{tenant.pk}:invoice:42:issue", object_type="invoice", object_id="42"
    )
    link = ensure(jira_client, tenant)
    assert link.jira_issue_key == created["key"]
    assert len(issues(fake_jira)) == 1


def test_update_resolves_an_in_doubt_link_and_keeps_the_ledger_label(jira_client, tenant, fake_jira):
    fake_jira.state["fail_next"] = [("POST", r"/issue$", 500, True)]
    with pytest.raises(JiraError):
        ensure(jira_client, tenant)
    link = ledger.update_issue(
        client=jira_client, link=Link.objects.get(), fields={**FIELDS, "summary": "Paid", "labels": ["paid"]}
    )
    assert link.state == Link.State.CREATED
    fields = jira_client.get_issue("FIN-1", fields=("summary", "labels"))["fields"]
    assert fields == {"summary": "Paid", "labels": ["paid", "mlc-acme-invoice-42"]}


def test_update_without_any_issue_in_jira_says_so(jira_client, tenant):
    link = Link.objects.create(
        tenant=tenant, dedupe_key="x", object_type="invoice", object_id="9", state=Link.State.IN_DOUBT
    )
    with pytest.raises(ledger.LedgerError, match="replay the event that creates it"):
        ledger.update_issue(client=jira_client, link=link, fields={"summary": "x"})


def test_deleted_links_are_not_recreated(jira_client, tenant, fake_jira):
    link = ensure(jira_client, tenant)
    Link.objects.filter(pk=link.pk).update(state=Link.State.DELETED)
    assert ensure(jira_client, tenant).state == Link.State.DELETED
    assert len(creates(fake_jira)) == 1


def test_rendered_edge_cases_are_valid_issues_on_cloud(jira_client, tenant, fake_jira):
    mapping = IssueMapping(
        name="Invoice created", project_key="FIN", issue_type="Task",
        summary_template="Invoice {{ number }} for {{ client_name }}: {{ amount }} {{ currency }}",
        description_template="Client: {{ client_name }}\nDue: {{ due_date }}\n\n- {{ link }}",
        labels=["freshbooks", "{{ organization }}"],
    )  # fmt: skip
    contexts = [
        {"number": "1", "client_name": "Ä" * 300, "amount": "0.00", "currency": "EUR"},
        {"number": "2", "client_name": "Łódź Café 東京 🚀", "amount": "-5.00", "currency": "PLN",
         "organization": "Zoë & Co", "link": "https://my.freshbooks.com/#/invoice/2"},
        {"number": "3", "client_name": None, "amount": None, "currency": None, "due_date": None},
    ]  # fmt: skip
    for index, context in enumerate(contexts):
        fields = render_fields(mapping, context, jira_client.site)
        assert "None" not in fields["summary"]
        ensure(jira_client, tenant, object_id=str(index), fields=fields)
    stored = [issue["fields"] for issue in issues(fake_jira)]
    assert len(stored) == 3
    assert len(stored[0]["summary"]) == 255 and stored[0]["summary"].endswith("…")
    assert "Zoë-&-Co" in stored[1]["labels"] and "東京" in stored[1]["summary"]
    assert stored[2]["summary"] == "Invoice 3 for :"


def test_rendered_issue_on_server_v2(tenant, sleeps):
    from connector.sandbox.jira import FakeJira, install_core_routes
    from connector.sandbox.jira_issues import install_issue_routes

    jira = install_issue_routes(install_core_routes(FakeJira(deployment="server")))
    try:
        site = JiraSiteFactory(tenant=tenant, base_url=jira.url, deployment="server")
        jira_client = JiraClient(site, sleep=sleeps)
        mapping = IssueMapping(name="n", project_key="FIN", issue_type="Task", summary_template="S {{ x }}",
                               description_template="Line 1\nLine 2", labels=["a b"])  # fmt: skip
        jira.state["fail_next"] = [("POST", r"/issue$", 500, True)]
        with pytest.raises(JiraError):
            ensure(jira_client, tenant, fields=render_fields(mapping, {"x": "ü"}, site))
        link = ensure(jira_client, tenant, fields=render_fields(mapping, {"x": "ü"}, site))
        (issue,) = jira.state["issues"].values()
        assert link.jira_issue_key == issue["key"]
        assert issue["fields"]["description"] == "Line 1\nLine 2"
        assert issue["fields"]["labels"] == ["a-b", "mlc-acme-invoice-42"]
        assert jira.calls("GET", r"^/rest/api/2/search$")
    finally:
        jira.close()


# Worklogs


@pytest.fixture
def issue_key(jira_client):
    return jira_client.create_issue(FIELDS)["key"]


def ensure_worklog(jira_client, tenant, issue_key, body=WORKLOG, entry="77"):
    return ledger.ensure_worklog(
        client=jira_client, tenant=tenant, time_entry_id=entry, issue_key=issue_key, body=body, event=None
    )


def test_worklog_create_update_delete(jira_client, tenant, issue_key, fake_jira):
    link = ensure_worklog(jira_client, tenant, issue_key)
    assert link.purpose == Link.Purpose.WORKLOG and link.state == Link.State.CREATED
    assert link.dedupe_key == f"{tenant.pk}:time_entry:77:worklog"
    (worklog,) = jira_client.list_worklogs(issue_key)
    assert worklog["id"] == link.jira_worklog_id and worklog["timeSpentSeconds"] == 5400
    assert worklog["properties"] == [
        {"key": "ml-connector", "value": {"tenant": "acme", "object_type": "time_entry", "object_id": "77"}}
    ]
    ensure_worklog(jira_client, tenant, issue_key)  # a duplicate delivery
    ledger.update_worklog(client=jira_client, link=link, body={**WORKLOG, "timeSpentSeconds": 60})
    (worklog,) = jira_client.list_worklogs(issue_key)
    assert worklog["timeSpentSeconds"] == 60
    link = ledger.delete_worklog(client=jira_client, link=link)
    assert link.state == Link.State.DELETED and jira_client.list_worklogs(issue_key) == []
    assert ledger.delete_worklog(client=jira_client, link=link).state == Link.State.DELETED


def test_worklog_applied_but_answered_500_then_replay_adopts_it(jira_client, tenant, issue_key, fake_jira):
    fake_jira.state["fail_next"] = [("POST", r"/worklog$", 500, True)]
    with pytest.raises(JiraError):
        ensure_worklog(jira_client, tenant, issue_key)
    link = Link.objects.get(purpose=Link.Purpose.WORKLOG)
    assert link.state == Link.State.IN_DOUBT and link.jira_issue_key == issue_key
    link = ensure_worklog(jira_client, tenant, issue_key)
    assert link.state == Link.State.CREATED
    assert len(jira_client.list_worklogs(issue_key)) == 1
    assert len(fake_jira.calls("POST", r"/worklog$")) == 1


def test_worklog_in_doubt_but_not_applied_is_added_once(jira_client, tenant, issue_key, fake_jira):
    fake_jira.state["fail_next"] = [("POST", r"/worklog$", 503)]
    with pytest.raises(JiraError):
        ensure_worklog(jira_client, tenant, issue_key)
    ensure_worklog(jira_client, tenant, issue_key)
    ensure_worklog(jira_client, tenant, issue_key)
    assert len(jira_client.list_worklogs(issue_key)) == 1


def test_delete_of_an_in_doubt_worklog_finds_and_deletes_it(jira_client, tenant, issue_key, fake_jira):
    fake_jira.state["fail_next"] = [("POST", r"/worklog$", 500, True)]
    with pytest.raises(JiraError):
        ensure_worklog(jira_client, tenant, issue_key)
    link = ledger.delete_worklog(client=jira_client, link=Link.objects.get(purpose=Link.Purpose.WORKLOG))
    assert link.state == Link.State.DELETED and jira_client.list_worklogs(issue_key) == []


def test_worklog_deleted_in_jira_is_fine(jira_client, tenant, issue_key):
    link = ensure_worklog(jira_client, tenant, issue_key)
    jira_client.delete_worklog(issue_key, link.jira_worklog_id)
    assert ledger.delete_worklog(client=jira_client, link=link).state == Link.State.DELETED


def test_other_tenants_worklog_is_not_adopted(jira_client, tenant, issue_key, fake_jira):
    other = Tenant.objects.create(name="Other", slug="other")
    jira_client.add_worklog(
        issue_key, WORKLOG, properties={"ml-connector": ledger.worklog_marker(other, "77")}
    )
    fake_jira.state["fail_next"] = [("POST", r"/worklog$", 500)]
    with pytest.raises(JiraError):
        ensure_worklog(jira_client, tenant, issue_key)
    link = ensure_worklog(jira_client, tenant, issue_key)
    assert len(jira_client.list_worklogs(issue_key)) == 2
    assert link.jira_worklog_id != jira_client.list_worklogs(issue_key)[0]["id"]


# Concurrency (PostgreSQL)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_create_one_issue(tenant, fake_jira, sleeps):
    site = JiraSiteFactory(tenant=tenant, base_url=fake_jira.url)
    fake_jira.state["create_delay"] = 0.5  # both workers are inside ensure_issue while Jira works

    links = run_in_threads(lambda: ensure(JiraClient(site, sleep=sleeps), tenant), 2, together=True)
    assert {link.jira_issue_key for link in links} == {"FIN-1"}
    assert len(issues(fake_jira)) == 1 and len(creates(fake_jira)) == 1


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_add_one_worklog(tenant, fake_jira, sleeps):
    site = JiraSiteFactory(tenant=tenant, base_url=fake_jira.url)
    key = JiraClient(site).create_issue(FIELDS)["key"]
    links = run_in_threads(
        lambda: ensure_worklog(JiraClient(site, sleep=sleeps), tenant, key), 3, together=True
    )
    assert len({link.jira_worklog_id for link in links}) == 1
    assert len(JiraClient(site).list_worklogs(key)) == 1


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_worker_arriving_during_an_in_doubt_create_adopts(tenant, fake_jira, sleeps):
    site = JiraSiteFactory(tenant=tenant, base_url=fake_jira.url)
    fake_jira.state.update(create_delay=0.5, fail_next=[("POST", r"/issue$", 500, True)])

    def work():
        try:
            return ensure(JiraClient(site, sleep=sleeps), tenant)
        except JiraError as exc:
            return exc

    results = run_in_threads(work, 2, together=True)
    assert sum(isinstance(r, JiraError) for r in results) == 1
    assert len(issues(fake_jira)) == 1 and len(creates(fake_jira)) == 1
    assert Link.objects.get().state == Link.State.CREATED


# outside a transaction, claims released meanwhile -------------------------------------------------------------------------------------------


def test_the_ledger_refuses_to_write_inside_an_outer_transaction(jira_client, tenant, fake_jira):
    from django.db import transaction

    with transaction.atomic(), pytest.raises(ledger.LedgerError, match="inside a database transaction"):
        ensure(jira_client, tenant)
    assert not creates(fake_jira) and not Link.objects.exists()


def test_an_update_for_a_claim_released_meanwhile_fails_with_a_ledger_error(jira_client, tenant, issue_key):
    """A worker held a pending link whose create was then rejected (link deleted): say so, no crash."""
    stale = Link.objects.create(
        tenant=tenant, dedupe_key="gone", object_type="invoice", object_id="7", state=Link.State.PENDING
    )
    worklog = Link.objects.create(
        tenant=tenant, dedupe_key="gone-wl", purpose=Link.Purpose.WORKLOG, object_type="time_entry",
        object_id="8", jira_issue_key=issue_key, state=Link.State.PENDING,
    )  # fmt: skip
    Link.objects.filter(pk__in=[stale.pk, worklog.pk]).delete()
    with pytest.raises(ledger.LedgerError, match="replay the event that creates it"):
        ledger.update_issue(client=jira_client, link=stale, fields={"summary": "x"})
    assert ledger.delete_worklog(client=jira_client, link=worklog).state == Link.State.DELETED
