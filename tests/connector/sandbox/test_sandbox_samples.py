"""The sandbox's sample data as a new user meets it (issue 23 point 4): payments pay the invoice chosen and make
no records of their own, nothing typed is cut silently, the stream stays off after a restart, and the samples
read right to a finance person (due after issued, a refund negative, distinct clients)."""

import time
from datetime import date

import pytest
import requests
from playwright.sync_api import expect

from connector.sandbox import samples
from connector.sandbox.freshbooks import ACCOUNT_ID
from connector.sandbox.runtime import Sandbox
from connector.sandbox.server import Response
from tests.connector.sandbox.test_sandbox import sandbox, wait_for  # noqa: F401 - the running sandbox


def records(running, kind):
    return running.fb.state["records"].get(kind, {})


def test_a_payment_pays_the_chosen_invoice_and_makes_no_other_record(sandbox):  # noqa: F811
    first = sandbox.create("invoice", {**samples.defaults("invoice"), "client": "Melmac Ltd"}, lose=True)
    sandbox.create(
        "invoice", {**samples.defaults("invoice"), "client": "Ork Traders", "amount": "80"}, lose=True
    )
    invoices, clients = dict(records(sandbox, "invoice")), dict(records(sandbox, "client"))

    fields = {**samples.defaults("payment_received"), "invoice": first["object_id"]}
    paid = sandbox.create("payment_received", fields, lose=True)
    payment = records(sandbox, "payment")[paid["object_id"]]
    assert str(payment["invoiceid"]) == first["object_id"]
    assert payment["amount"] == {"amount": "120.00", "code": "USD"}  # what was outstanding
    assert records(sandbox, "invoice").keys() == invoices.keys()  # no invoice of its own
    assert records(sandbox, "client").keys() == clients.keys()
    assert records(sandbox, "invoice")[first["object_id"]]["payment_status"] == "paid"
    assert str(payment["clientid"]) == str(invoices[first["object_id"]]["customerid"])


def test_the_payment_form_lists_the_invoices_and_refuses_without_one(sandbox):  # noqa: F811
    page = requests.get(sandbox.fb.url + "/?sample=payment_received", timeout=5).text
    assert 'id="no-invoice"' in page
    form = {"sample": "payment_received", "invoice": "", "amount": "", "note": "", "lose": "1"}
    answer = requests.post(sandbox.fb.url + "/_sandbox/create", data=form, timeout=5)
    assert answer.status_code == 400 and "create an invoice first" in answer.text
    assert not records(sandbox, "payment") and not records(sandbox, "invoice")

    made = sandbox.create("invoice", samples.defaults("invoice"), lose=True)
    page = requests.get(sandbox.fb.url + "/?sample=payment_received", timeout=5).text
    assert f'<option value="{made["object_id"]}">SBX-{made["object_id"]}' in page


def test_no_field_is_cut_silently(sandbox):  # noqa: F811
    long = "Catering for the spring gala, " * 10  # 300 characters
    form = {
        "sample": "invoice",
        "client": "Melmac Ltd",
        "amount": "10",
        "currency": "USD",
        "description": long,
    }
    answer = requests.post(sandbox.fb.url + "/_sandbox/create", data=form, timeout=5)
    assert answer.status_code == 400 and "Description: at most 200 characters" in answer.text
    assert not records(sandbox, "invoice")
    page = requests.get(sandbox.fb.url + "/?sample=invoice", timeout=5).text
    assert 'maxlength="200"' in page  # the form says so before sending


def test_samples_read_right_to_a_finance_person(sandbox):  # noqa: F811
    one = sandbox.create("invoice", {**samples.defaults("invoice"), "client": "Melmac Ltd"}, lose=True)
    two = sandbox.create("invoice", {**samples.defaults("invoice"), "client": "Ork Traders"}, lose=True)
    again = sandbox.create("invoice", {**samples.defaults("invoice"), "client": "Melmac Ltd"}, lose=True)
    invoice = records(sandbox, "invoice")[one["object_id"]]
    assert date.fromisoformat(invoice["due_date"]) > date.fromisoformat(invoice["create_date"])
    held = records(sandbox, "client")
    clients = [
        held[str(records(sandbox, "invoice")[e["object_id"]]["customerid"])] for e in (one, two, again)
    ]
    assert clients[0]["id"] == clients[2]["id"], "the same client typed again is the same client"
    assert (clients[0]["fname"], clients[0]["email"]) != (clients[1]["fname"], clients[1]["email"])
    assert clients[0]["email"].endswith("@melmac-ltd.example")

    refund = sandbox.create(
        "payment_refunded", {**samples.defaults("payment_refunded"), "invoice": one["object_id"]}, lose=True
    )
    assert records(sandbox, "payment")[refund["object_id"]]["amount"]["amount"].startswith("-")


def test_the_stream_does_not_restart_by_itself(tmp_path):
    path = tmp_path / "sandbox.json"
    first = Sandbox(state_path=path)
    first.fb.state["stream"] = {"on": True, "interval": 30}
    first.close()
    second = Sandbox(state_path=path)
    try:
        assert second.fb.state["stream"] == {"on": False, "interval": 30}  # the interval is kept
    finally:
        second.close()


def test_the_activity_tells_the_page_how_deliveries_went(sandbox):  # noqa: F811
    entry = sandbox.create("expense", samples.defaults("expense"))
    wait_for(lambda: entry["delivery"] != "sending…")
    rows = requests.get(sandbox.fb.url + "/_sandbox/activity", timeout=5).json()
    assert rows[0] == {"object_id": entry["object_id"], "delivery": entry["delivery"]}


@pytest.mark.browser
def test_sending_updates_by_itself_on_the_page(sandbox, fake_server, page):  # noqa: F811
    slow = fake_server("slow-connector")

    @slow.route("POST", r"/webhooks/freshbooks/")
    def receive(request):
        time.sleep(1.5)  # the connector takes a moment: the page first shows "sending…"
        return Response(200, "")

    hook = {"callbackid": 9001, "event": "expense.create", "uri": f"{slow.url}/webhooks/freshbooks/"}
    sandbox.fb.state["callbacks"][9001] = {
        **hook,
        "verified": True,
        "verifier": "sandbox-verifier",
        "account_id": ACCOUNT_ID,
    }
    page.goto(f"{sandbox.fb.url}/?sample=expense")
    page.click("#create")
    cell = page.locator("#activity-table td.delivery").first
    expect(cell).to_have_text("sending…")
    expect(cell).to_have_text("delivered to callback 9001: HTTP 200", timeout=10_000)  # no reload
