"""FreshBooks records are fetched complete: every kind with the `include[]` parts it is rendered from.

FreshBooks answers an invoice without its `lines` unless `include[]=lines` is asked (and an expense without its
category unless `include[]=category`); the fake FreshBooks serves included parts only when asked, so a fetch
that forgets an include renders an empty loop here.
"""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from connector.models import IssueMapping
from connector.reconcile import reconcile
from connector.sandbox.freshbooks_lists import install_list_routes
from connector.sandbox.freshbooks_records import put
from tests.processing import created_issues, description_text, process

LINES = "{% for l in lines %}- {{ l.name }} ({{ l.qty }} x) {{ l.amount }}\n{% endfor %}"


def includes_asked(fb, path_regex):
    return [call.query.get("include[]", []) for call in fb.calls("GET", path_regex)]


@pytest.mark.django_db
def test_an_invoice_is_fetched_with_its_lines(connected, fb, jira):
    line = fb.samples["invoice"]["lines"][0]
    IssueMapping.objects.filter(tenant=connected, event="invoice.create").update(description_template=LINES)

    event = process(connected, "invoice.create", 987654)

    assert event.status == "succeeded", event.status_detail
    assert f"- {line['name']} (" in description_text(created_issues(jira)[0]["fields"])
    assert ["lines"] in includes_asked(fb, r"/invoices/invoices/987654$")
    assert event.record["invoice"]["lines"]  # what was fetched, kept on the event


@pytest.mark.django_db
def test_a_payments_invoice_is_fetched_with_its_lines_too(connected, fb, jira):
    line = fb.samples["invoice"]["lines"][0]
    IssueMapping.objects.filter(tenant=connected, event="payment.create").update(
        description_template="Paid: {% for l in invoice.lines %}{{ l.name }};{% endfor %}"
    )
    payment = fb.samples["payment"]

    event = process(connected, "payment.create", payment["id"])

    assert event.status == "succeeded", event.status_detail
    assert f"Paid: {line['name']};" in description_text(created_issues(jira)[0]["fields"])
    invoice = payment["invoiceid"]
    assert ["lines"] in includes_asked(fb, rf"/invoices/invoices/{invoice}$")


@pytest.mark.django_db
def test_an_expense_is_fetched_with_its_category(connected, fb, jira):
    IssueMapping.objects.filter(tenant=connected, event="expense.create").update(
        description_template="Category: {{ category_name }}"
    )

    event = process(connected, "expense.create", fb.samples["expense"]["id"])

    assert event.status == "succeeded", event.status_detail
    name = fb.samples["expense_category"]["category"]
    assert f"Category: {name}" in description_text(created_issues(jira)[0]["fields"])


@pytest.mark.django_db
def test_a_reconcile_dry_run_renders_listed_invoices_with_their_lines(connected, fb, jira):
    install_list_routes(fb)
    eastern = (timezone.now() - timedelta(minutes=1)).astimezone(ZoneInfo("America/New_York"))
    put(fb, "invoice", {**fb.samples["invoice"], "updated": eastern.strftime("%Y-%m-%d %H:%M:%S")})
    IssueMapping.objects.filter(tenant=connected, event="invoice.create").update(
        summary_template="First line: {{ lines.0.name }}"
    )

    result = reconcile(connected, kinds=["invoice"], dry_run=True)

    line = fb.samples["invoice"]["lines"][0]
    assert [what for _, _, what in result.created] == [f"issue in FIN: “First line: {line['name']}”"]
    assert ["lines"] in includes_asked(fb, r"/invoices/invoices$")


@pytest.mark.django_db
def test_the_fake_serves_included_parts_only_when_asked(fb):
    import requests

    from connector.sandbox.freshbooks import ACCESS_TOKEN, ACCOUNT_ID

    url = f"{fb.url}/accounting/account/{ACCOUNT_ID}/invoices/invoices/987654"
    headers = {"Authorization": f"Bearer {ACCESS_TOKEN}"}
    bare = requests.get(url, headers=headers, timeout=5).json()["response"]["result"]["invoice"]
    full = requests.get(url, params={"include[]": "lines"}, headers=headers, timeout=5).json()
    assert "lines" not in bare
    assert full["response"]["result"]["invoice"]["lines"]
