"""Each handler, from vendor-shaped FreshBooks records, writes the Jira request a user expects (Cloud v3 and
Server v2), through the real task, the real clients and loopback fakes."""

import pytest

from connector.kinds import build_context, money, payment_kind
from connector.models import IssueMapping, JiraUserMatch, Link
from connector.sandbox.freshbooks_records import put
from tests.processing import created_issues, description_text, issues, process

both = pytest.mark.parametrize("jira", ["cloud", "server"], indirect=True)


def only_issue(jira):
    bodies = created_issues(jira)
    assert len(bodies) == 1, bodies
    return bodies[0]["fields"]


@both
@pytest.mark.django_db
def test_invoice_create_becomes_one_issue(connected, fb, jira):
    event = process(connected, "invoice.create", 987654)

    assert event.status == "succeeded", event.status_detail
    fields = only_issue(jira)
    assert event.jira_key == issues(jira)[0]["key"] == "FIN-1"
    assert fields["project"] == {"key": "FIN"}
    assert fields["issuetype"] == {"id": "10001"}  # FIN's Task, by id from its create metadata
    assert fields["summary"] == "Invoice ACM0002 for Gordon Shumway: 41.94 CAD"
    text = description_text(fields)
    assert "Client: Gordon Shumway (gordon.shumway@AmericanCyanamid.com)" in text
    assert "Due date: 2021-04-16" in text and "Status: partial" in text
    assert "Open in FreshBooks: https://my.freshbooks.com/#/invoice/6BApk-987654" in text
    assert set(fields["labels"]) == {"freshbooks", "invoice", "mlc-acme-invoice-987654"}
    if jira.deployment == "cloud":
        assert fields["description"]["type"] == "doc"
    else:
        assert isinstance(fields["description"], str)
    # The fetched records are kept (encrypted) on the event, and every call is an attempt.
    assert event.record["invoice"]["invoice_number"] == "ACM0002"
    assert event.record["client"]["email"] == "gordon.shumway@AmericanCyanamid.com"
    actions = list(event.attempt_set.values_list("action", flat=True))
    assert actions[0].endswith("/invoices/invoices/987654") and actions[1].endswith("/users/clients/12345")
    assert actions[-1] == f"POST /rest/api/{'3' if jira.deployment == 'cloud' else '2'}/issue"


@both
@pytest.mark.django_db
def test_bill_uses_its_vendor_and_category(connected, fb, jira):
    event = process(connected, "bill.create", 1803)

    assert event.status == "succeeded", event.status_detail
    fields = only_issue(jira)
    assert fields["summary"] == "Bill BN-2021-044 from Acme Office Supply: 1250.50 USD"
    text = description_text(fields)
    assert "Issued: 2021-05-31" in text and "Category: Office Supplies" in text
    assert set(fields["labels"]) == {"freshbooks", "bill", "mlc-acme-bill-1803"}


@pytest.mark.django_db
def test_bill_without_embedded_vendor_fetches_the_bill_vendor(connected, fb, jira):
    bill = fb.samples["bill"]
    bill.pop("vendor")
    put(fb, "bill", bill)

    event = process(connected, "bill.create", 1803)

    assert event.status == "succeeded", event.status_detail
    assert only_issue(jira)["summary"] == "Bill BN-2021-044 from Acme Office Supply: 1250.50 USD"
    assert fb.calls("GET", r"/bill_vendors/bill_vendors/4211$")


@both
@pytest.mark.django_db
def test_expense_includes_its_category(connected, fb, jira):
    event = process(connected, "expense.create", 23456)

    assert event.status == "succeeded", event.status_detail
    fields = only_issue(jira)
    assert fields["summary"] == "Expense Meals and Entertainment from Serano Bakery: 54.00 CAD"
    assert "Notes: For lunch" in description_text(fields)
    (call,) = fb.calls("GET", r"/expenses/expenses/23456$")
    assert call.query["include[]"] == ["category"]


@both
@pytest.mark.django_db
@pytest.mark.parametrize(
    "change, kind",
    [
        ({}, "received"),
        ({"amount": {"amount": "-41.94", "code": "CAD"}}, "refunded"),
        ({"type": "Refund"}, "refunded"),
        ({"gateway": "stripe", "invoice_v3_status": "failed"}, "failed"),
    ],
)
def test_payment_kind_picks_the_mapping(connected, fb, jira, change, kind):
    payment, change = dict(fb.samples["payment"]), dict(change)
    invoice_state = change.pop("invoice_v3_status", None)
    payment.update(change)
    put(fb, "payment", payment)
    if invoice_state:
        put(fb, "invoice", {**fb.samples["invoice"], "v3_status": invoice_state})

    event = process(connected, "payment.create", 235435)

    assert event.status == "succeeded", event.status_detail
    fields = only_issue(jira)
    assert fields["summary"].startswith(f"Payment {kind} for invoice ACM0002: ")
    assert "(Gordon Shumway)" in description_text(fields) or "(American Cyanamid)" in description_text(fields)
    assert "Type: " in description_text(fields)
    assert "Open in FreshBooks: https://my.freshbooks.com/#/invoice/6BApk-987654" in description_text(fields)


def test_payment_kind_detection_rules():
    assert payment_kind({"amount": {"amount": "10.00"}, "type": "Check"}) == "received"
    assert payment_kind({"amount": {"amount": "0"}, "type": "Cash"}) == "received"
    assert payment_kind({"amount": {"amount": "-1.00"}, "type": "Check"}) == "refunded"
    assert payment_kind({"amount": {"amount": "5"}, "type": "Credit Refund"}) == "refunded"
    assert payment_kind({"amount": {"amount": "5"}}, {"v3_status": "failed"}) == "failed"
    assert payment_kind({"amount": {"amount": "5"}}, {"status": 7}) == "failed"
    assert payment_kind({"amount": {"amount": "5"}, "status": "declined"}) == "failed"


@pytest.mark.django_db
def test_payment_kind_without_a_mapping_is_skipped(connected, fb, jira):
    IssueMapping.objects.filter(tenant=connected, payment_kind="refunded").update(enabled=False)
    put(fb, "payment", {**fb.samples["payment"], "type": "Refund"})

    event = process(connected, "payment.create", 235435)

    assert event.status == "skipped"
    assert "payment kind refunded" in event.status_detail
    assert not created_issues(jira)


@both
@pytest.mark.django_db
def test_mapping_parent_custom_fields_and_users(connected, fb, jira):
    jira.state["custom_fields"].append("customfield_10071")
    jira.state["issues"]["FIN-100"] = {"id": "20000", "key": "FIN-100", "fields": {"summary": "Receivables"},
                                      "properties": {}, "hidden_searches": 0, "created": 0}  # fmt: skip
    jira.state["users"] += [
        {"accountId": "acc-reporter", "name": "rita", "displayName": "Rita", "emailAddress": "rita@acme.test"},
        {"accountId": "acc-gordon", "name": "gordon", "displayName": "Gordon",
         "emailAddress": "gordon.shumway@AmericanCyanamid.com"},
    ]  # fmt: skip
    server = jira.deployment == "server"
    JiraUserMatch.objects.create(
        tenant=connected,
        kind="client",
        freshbooks_id="12345",
        jira_account_id="rita" if server else "acc-reporter",
    )
    mapping = IssueMapping.objects.get(tenant=connected, event="invoice.create")
    mapping.parent_key = "FIN-100"
    mapping.custom_fields = {"customfield_10071": "{{ invoice_number }}/{{ currency }}"}
    mapping.reporter_from = "client"
    mapping.labels = ["freshbooks", "client {{ client_name }}"]
    mapping.save()

    event = process(connected, "invoice.create", 987654)

    assert event.status == "succeeded", event.status_detail
    fields = only_issue(jira)
    assert fields["parent"] == {"key": "FIN-100"}
    assert fields["customfield_10071"] == "ACM0002/CAD"
    assert fields["reporter"] == ({"name": "rita"} if server else {"accountId": "acc-reporter"})
    assert "client-Gordon-Shumway" in fields["labels"]


@pytest.mark.django_db
def test_assignee_found_by_email_is_cached_and_unmatched_is_noted(connected, fb, jira):
    jira.state["users"].append(
        {
            "accountId": "acc-gordon",
            "displayName": "Gordon",
            "emailAddress": "gordon.shumway@AmericanCyanamid.com",
        }
    )
    IssueMapping.objects.filter(tenant=connected, event="invoice.create").update(assignee_from="client")
    IssueMapping.objects.filter(tenant=connected, event="bill.create").update(reporter_from="vendor")

    invoice_event = process(connected, "invoice.create", 987654)
    bill_event = process(connected, "bill.create", 1803)

    assert invoice_event.status == bill_event.status == "succeeded"
    first, second = (body["fields"] for body in created_issues(jira))
    assert first["assignee"] == {"accountId": "acc-gordon"}
    assert JiraUserMatch.objects.get(
        tenant=connected, kind="client", freshbooks_id="12345"
    ).jira_account_id == ("acc-gordon")
    assert "reporter" not in second
    assert "reporter left unset: no Jira user matches the FreshBooks vendor 4211" in bill_event.status_detail


@pytest.mark.django_db
@pytest.mark.parametrize(
    "invoice_change",
    [
        pytest.param({"current_organization": "Ü" + "x" * 299, "organization": ""}, id="300-char-client"),
        pytest.param({"current_organization": "Société Générale — Zürich 東京 🚀"}, id="non-ascii"),
        # Jira counts UTF-16 units: 300 emoji are 600 "characters" to it (review-sync).
        pytest.param({"current_organization": "🚀" * 300, "organization": ""}, id="300-emoji-client"),
        pytest.param({"amount": {"amount": "0", "code": "CAD"}}, id="zero-amount"),
        pytest.param({"amount": {"amount": "-12.5", "code": "EUR"}}, id="negative-amount"),
        pytest.param(
            {"due_date": None, "notes": None, "customerid": 999, "v3_status": None}, id="missing-optional"
        ),
    ],
)
def test_awkward_records_still_make_a_valid_issue(connected, fb, jira, invoice_change):
    put(fb, "invoice", {**fb.samples["invoice"], **invoice_change})

    event = process(connected, "invoice.create", 987654)

    assert event.status == "succeeded", event.status_detail
    fields = only_issue(jira)
    assert 0 < len(fields["summary"]) <= 255 and "\n" not in fields["summary"]
    assert "None" not in fields["summary"] and "None" not in description_text(fields)
    if "amount" in invoice_change:
        expected = money(invoice_change["amount"])
        assert fields["summary"].endswith(f"{expected[0]} {expected[1]}")
    if len(invoice_change.get("current_organization") or "") >= 300:
        assert fields["summary"].endswith("…")
    if "customerid" in invoice_change:  # the client record is gone: noted, the issue is still made
        assert "client 999 not found in FreshBooks" in event.status_detail
        assert "Due date: —" in description_text(fields)


@pytest.mark.django_db
def test_update_events_act_only_when_a_mapping_enables_them(connected, fb, jira):
    skipped = process(connected, "invoice.update", 987654)
    assert skipped.status == "skipped" and "no enabled mapping for invoice.update" in skipped.status_detail
    assert not fb.calls("GET")  # nothing fetched for an event nobody asked for

    created = process(connected, "invoice.create", 987654)
    mapping = IssueMapping.objects.get(tenant=connected, event="invoice.create")
    mapping.pk, mapping.event, mapping.name = None, "invoice.update", "Invoice updated"
    mapping.save()
    put(fb, "invoice", {**fb.samples["invoice"], "amount": {"amount": "99.00", "code": "CAD"}})

    updated = process(connected, "invoice.update", 987654)

    assert updated.status == "succeeded", updated.status_detail
    assert updated.jira_key == created.jira_key
    assert len(issues(jira)) == 1
    assert issues(jira)[0]["fields"]["summary"] == "Invoice ACM0002 for Gordon Shumway: 99.00 CAD"
    assert "mlc-acme-invoice-987654" in issues(jira)[0]["fields"]["labels"]


@pytest.mark.django_db
def test_update_without_a_linked_issue_is_skipped(connected, fb, jira):
    IssueMapping.objects.create(tenant=connected, name="upd", event="invoice.update", project_key="FIN",
                                summary_template="x")  # fmt: skip
    event = process(connected, "invoice.update", 987654)
    assert event.status == "skipped"
    assert "no Jira issue is linked to invoice 987654" in event.status_detail


@pytest.mark.django_db
def test_condition_false_skips_with_reason(connected, fb, jira):
    IssueMapping.objects.filter(tenant=connected, event="invoice.create").update(
        condition="{% if status == 'draft' %}yes{% endif %}"
    )
    event = process(connected, "invoice.create", 987654)
    assert event.status == "skipped" and "conditions" in event.status_detail
    assert not created_issues(jira)


@pytest.mark.django_db
def test_client_events_match_users_and_create_no_issue(connected, fb, jira):
    jira.state["users"].append(
        {
            "accountId": "acc-gordon",
            "displayName": "Gordon",
            "emailAddress": "gordon.shumway@AmericanCyanamid.com",
        }
    )
    event = process(connected, "client.create", 12345)
    assert event.status == "succeeded" and "matched to Jira user acc-gordon" in event.status_detail
    assert JiraUserMatch.objects.filter(tenant=connected, freshbooks_id="12345").count() == 1
    assert not created_issues(jira)

    put(fb, "client", {**fb.samples["client"], "email": "someone.else@example.com"})
    again = process(connected, "client.update", 12345)
    assert again.status == "skipped" and "no Jira user matches" in again.status_detail
    assert not JiraUserMatch.objects.filter(tenant=connected, freshbooks_id="12345").exists()


@pytest.mark.django_db
def test_deleted_or_vanished_records_are_skipped(connected, fb, jira):
    deleted = process(connected, "invoice.delete", 987654)
    assert deleted.status == "skipped" and "not synced" in deleted.status_detail
    gone = process(connected, "expense.create", 777)
    assert gone.status == "skipped" and "expense 777 no longer exists in FreshBooks" in gone.status_detail
    assert not created_issues(jira)


@pytest.mark.django_db
def test_jira_rejection_fails_the_event_with_jiras_message(connected, fb, jira):
    IssueMapping.objects.filter(tenant=connected, event="invoice.create").update(issue_type="Story")

    event = process(connected, "invoice.create", 987654)

    assert event.status == "failed"
    assert "Project FIN has no issue type “Story” that can be created" in event.status_detail
    assert not Link.objects.exists()  # a rejection leaves nothing claimed: a replay starts afresh


@pytest.mark.django_db
def test_broken_template_fails_readably(connected, fb, jira):
    IssueMapping.objects.filter(tenant=connected, event="invoice.create").update(summary_template="{% if %}")
    event = process(connected, "invoice.create", 987654)
    assert event.status == "failed" and event.status_detail.startswith("Mapping template:")


@pytest.mark.django_db
def test_reconnect_required_fails_with_the_reason(connected, fb, jira):
    account = connected.freshbooks_accounts.get()
    account.status, account.last_error = (
        "needs_reconnect",
        "FreshBooks refused the refresh token; connect again.",
    )
    account.save()
    event = process(connected, "invoice.create", 987654)
    assert event.status == "failed"
    assert event.status_detail == "Reconnect required: FreshBooks refused the refresh token; connect again."


def test_context_documents_every_key_the_default_templates_use():
    import re

    from connector.defaults import DEFAULT_MAPPINGS
    from connector.kinds import docs_for, kind_for

    for spec in DEFAULT_MAPPINGS:
        kind = kind_for(spec["event"]).name
        used = set(re.findall(r"{{\s*([a-z_]+)", spec["summary"] + spec["description"]))
        used |= set(re.findall(r"{%\s*if\s+([a-z_]+)", spec["description"]))
        assert used <= set(docs_for(kind)), (kind, used - set(docs_for(kind)))


def test_build_context_money_and_names():
    context = build_context(
        "invoice",
        {
            "id": 5,
            "amount": {"amount": "7.005", "code": "USD"},
            "fname": "Ana",
            "lname": "Silva",
            "organization": "",
        },
    )
    assert context["amount"] == "7.01" and context["currency"] == "USD"
    assert context["client_name"] == "Ana Silva"
    assert build_context("invoice", {"id": 1})["amount"] == ""


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["invoice", "bill", "payment", "expense", "time_entry", "client"])
def test_template_context_is_plain_data_that_cannot_reach_secrets(connected, kind):
    """Templates see names and ids, never a model (tenant.jira_site.api_token, account.access_token)."""
    from connector.preview import load_sample
    from connector.render import render_text

    record, related = load_sample(kind) or ({"id": 1}, {})
    account = connected.freshbooks_accounts.get()
    context = build_context(kind, record, related=related, tenant=connected, account=account)

    def plain(value):
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(item) for item in value)
        return value is None or isinstance(value, (str, int, float, bool))

    assert plain(context)
    leak = "{{ tenant.jira_site.api_token }}{{ account.access_token }}{{ tenant.freshbooks_accounts.all }}"
    assert render_text(leak, context) == ""


def test_money_is_two_decimals_and_zero_is_never_negative():
    assert money({"amount": "41.9", "code": "CAD"}) == ("41.90", "CAD")
    assert money({"amount": "-0.00", "code": "USD"}) == ("0.00", "USD")
    assert money("-0.004") == ("0.00", "")
    assert money("-12.345") == ("-12.35", "")
    assert money({"amount": None, "code": "EUR"}) == ("", "EUR")


@pytest.mark.django_db
def test_a_refused_user_search_leaves_the_assignee_unset_and_still_creates_the_issue(connected, fb, jira):
    """Jira refusing the user search (no "Browse users" permission) is not a reason to lose the issue."""
    jira.state["fail_next"] = [
        {"method": "GET", "path": r"/user/search$", "status": 403,
         "body": {"errorMessages": ["You do not have the permission to browse users."]}},
    ]  # fmt: skip
    IssueMapping.objects.filter(tenant=connected, event="invoice.create").update(assignee_from="client")

    event = process(connected, "invoice.create", 987654)

    assert event.status == "succeeded", event.status_detail
    assert "assignee" not in only_issue(jira)
    assert "assignee left unset: Jira user search failed" in event.status_detail
    assert "permission to browse users" in event.status_detail
