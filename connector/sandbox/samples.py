"""Sample FreshBooks records the sandbox creates: one per operator click (editable fields) or per stream tick.

Each sample kind (`SAMPLES`) declares its FreshBooks event, its editable fields (name, label, default) and a
builder turning the submitted fields into the records to store in the FreshBooks sandbox (the record itself
plus the related records the worker fetches: client, vendor, category, project). Records start from
the shipped samples (connector/samples/<kind>.json, from FreshBooks' SDK fixtures) with fresh ids, and read
right to a finance person: an invoice is due 30 days after it is issued, a refund is negative, each client
has its own contact, and a client typed again is the same client (no second record).

A payment pays the invoice the operator chose (`invoice`: its id or number, among the sandbox's invoices):
it creates no invoice or client of its own; SampleError when there is none to pay.
"""

import copy
import hashlib
import itertools
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from connector.preview import load_sample


@dataclass(frozen=True)
class Sample:
    label: str
    event: str  # the FreshBooks webhook event name delivered
    kind: str  # the record kind stored (fb.state["records"][kind])
    fields: tuple  # (name, label, default)
    build: object  # callable(fields, new_id, records) -> list of (kind, record); the first is the event's
    # record; `records` is what the sandbox holds ({kind: {id: record}}), read to pick or reuse records


class SampleError(ValueError):
    """The sample cannot be made as asked (shown to the operator)."""


def _money(amount, currency):
    return {"amount": f"{float(amount or 0):.2f}", "code": (currency or "USD").upper()[:3]}


def _today():
    return datetime.now(UTC).strftime("%Y-%m-%d")


def _in_days(days):
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%d")


EASTERN = ZoneInfo("America/New_York")  # FreshBooks accounting times are US/Eastern, without an offset


def stamped(records):
    """The records with their update time set to now, as FreshBooks does (what a reconcile pass lists by):
    accounting `updated` (bills `updated_at`) in US/Eastern, time entries `updated_at` in ISO 8601 UTC."""
    now = datetime.now(UTC)
    for kind, record in records:
        if kind == "time_entry":
            record["updated_at"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            record["updated_at" if kind == "bill" else "updated"] = now.astimezone(EASTERN).strftime(
                "%Y-%m-%d %H:%M:%S"
            )
    return records


FIRST_NAMES = ("Ava", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas")
LAST_NAMES = ("Okafor", "Lindqvist", "Moreau", "Tanaka", "Silva", "Novak", "Reyes", "Byrne", "Kaur", "Weber")


def contact(organization):
    """A contact person of its own for an organization: (first name, last name, email), the same every time."""
    digest = hashlib.sha256(organization.encode()).digest()
    first, last = FIRST_NAMES[digest[0] % len(FIRST_NAMES)], LAST_NAMES[digest[1] % len(LAST_NAMES)]
    domain = re.sub(r"[^a-z0-9]+", "-", organization.lower()).strip("-") or "client"
    return first, last, f"{first}.{last}@{domain}.example".lower()


def _client(fields, new_id, records):
    """The client named in `fields` — the one already held when there is (a client typed again is the same
    client), else a new one with its own contact."""
    _, related = load_sample("invoice")
    organization = fields.get("client") or related["client"]["organization"]
    for held in (records or {}).get("client", {}).values():
        if held.get("organization") == organization:
            return held
    client = copy.deepcopy(related["client"])
    fname, lname, email = contact(organization)
    client.update(id=new_id(), organization=organization, fname=fname, lname=lname, email=email)
    if fields.get("email"):
        client["email"] = fields["email"]
    return client


def build_invoice(fields, new_id, records=None):
    record, _ = load_sample("invoice")
    client = _client(fields, new_id, records)
    invoice_id = new_id()
    invoice = copy.deepcopy(record)
    invoice.update(
        id=invoice_id,
        invoiceid=invoice_id,
        invoice_number=f"SBX-{invoice_id}",
        customerid=client["id"],
        amount=_money(fields.get("amount"), fields.get("currency")),
        currency_code=fields.get("currency") or "USD",
        current_organization=client["organization"],
        organization=client["organization"],
        description=fields.get("description") or "",
        create_date=_today(),
        due_date=_in_days(30),
        due_offset_days=30,
        outstanding=_money(fields.get("amount"), fields.get("currency")),
        paid=_money(0, fields.get("currency")),
        v3_status="sent",
        payment_status="unpaid",
        display_status="sent",  # a new invoice, not the sample's
    )
    held = str(client["id"]) in (records or {}).get("client", {})
    return [("invoice", invoice)] if held else [("invoice", invoice), ("client", client)]


def build_bill(fields, new_id, records=None):
    record, related = load_sample("bill")
    bill, vendor = copy.deepcopy(record), copy.deepcopy(related["vendor"])
    vendor.update(vendorid=new_id(), vendor_name=fields.get("vendor") or vendor["vendor_name"])
    bill_id = new_id()
    money = _money(fields.get("amount"), fields.get("currency"))
    bill.update(
        id=bill_id,
        bill_number=f"BILL-{bill_id}",
        vendorid=vendor["vendorid"],
        vendor=vendor,
        amount=money,
        total_amount=money,
        outstanding=money,
        currency_code=money["code"],
        issue_date=_today(),
        overall_description=fields.get("description") or "",
    )
    return [("bill", bill), ("bill_vendor", vendor)]


def chosen_invoice(fields, records):
    """The invoice a payment sample pays: `fields["invoice"]` is its id or number; else the newest one."""
    invoices = (records or {}).get("invoice", {})
    if not invoices:
        raise SampleError("There is no invoice to pay: create an invoice first.")
    wanted = str(fields.get("invoice") or "").strip()
    if not wanted:
        return invoices[max(invoices, key=int)]
    for invoice in invoices.values():
        if wanted in (str(invoice["id"]), str(invoice.get("invoice_number"))):
            return invoice
    raise SampleError(f"There is no invoice {wanted}: choose one of the listed invoices.")


def payment_builder(payment_kind):
    def build(fields, new_id, records=None):
        invoice = copy.deepcopy(chosen_invoice(fields, records))
        record, _ = load_sample("payment")
        payment = copy.deepcopy(record)
        payment_id = new_id()
        amount = fields.get("amount") or (invoice.get("outstanding") or invoice["amount"])["amount"]
        currency = invoice["amount"]["code"]
        money = _money(-abs(float(amount)) if payment_kind == "refunded" else amount, currency)
        payment.update(
            id=payment_id,
            logid=payment_id,
            invoiceid=invoice["id"],
            clientid=invoice["customerid"],
            amount=money,
            date=_today(),
            note=fields.get("note") or "",
            type=fields.get("type") or "Check",
        )
        if payment_kind == "refunded":
            payment["type"] = "Refund"
            return [("payment", payment)]
        if payment_kind == "failed":
            invoice["v3_status"] = "failed"
        else:  # the payment is applied to the invoice, as FreshBooks does
            outstanding = float((invoice.get("outstanding") or invoice["amount"])["amount"]) - float(amount)
            invoice["outstanding"] = _money(max(outstanding, 0), currency)
            invoice["payment_status"] = "paid" if outstanding <= 0 else "partial"
        return [("payment", payment), ("invoice", invoice)]

    return build


def build_expense(fields, new_id, records=None):
    record, related = load_sample("expense")
    expense, category = copy.deepcopy(record), copy.deepcopy(related["category"])
    category_id = new_id()
    category.update(id=category_id, categoryid=category_id, category=fields.get("category") or "Meals")
    expense_id = new_id()
    expense.update(
        id=expense_id,
        expenseid=expense_id,
        categoryid=category_id,
        vendor=fields.get("vendor") or "",
        amount=_money(fields.get("amount"), fields.get("currency")),
        notes=fields.get("notes") or "",
        date=_today(),
    )
    return [("expense", expense), ("expense_category", category)]


def build_client(fields, new_id, records=None):
    record, _ = load_sample("client")
    client = copy.deepcopy(record)
    client.update(
        id=new_id(),
        organization=fields.get("organization") or "",
        email=fields.get("email") or "",
        fname=fields.get("fname") or "",
        lname=fields.get("lname") or "",
    )
    return [("client", client)]


def build_time_entry(fields, new_id, records=None):
    record, related = load_sample("time_entry")
    entry, project = copy.deepcopy(record), copy.deepcopy(related["project"])
    project.update(id=new_id(), title=fields.get("project") or project["title"])
    minutes = max(1, int(float(fields.get("minutes") or 60)))
    entry.update(
        id=new_id(),
        project_id=project["id"],
        note=fields.get("note") or "",
        duration=minutes * 60,
        started_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        local_started_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        local_timezone="UTC",
    )
    return [("time_entry", entry), ("project", project)]


MONEY = (("amount", "Amount", "120.00"), ("currency", "Currency", "USD"))
SAMPLES = {
    "invoice": Sample(
        "Invoice",
        "invoice.create",
        "invoice",
        (
            ("client", "Client", "Gordon's Bakery"),
            *MONEY,
            ("description", "Description", "Catering, March"),
        ),
        build_invoice,
    ),
    "bill": Sample(
        "Bill",
        "bill.create",
        "bill",
        (
            ("vendor", "Vendor", "Acme Office Supply"),
            *MONEY,
            ("description", "Description", "Paper and toner"),
        ),
        build_bill,
    ),
    **{
        f"payment_{kind}": Sample(
            f"Payment {kind}",
            "payment.create",
            "payment",
            (
                ("invoice", "Invoice paid", ""),
                ("amount", "Amount (empty: what is outstanding)", ""),
                ("note", "Note", ""),
            ),
            payment_builder(kind),
        )
        for kind in ("received", "failed", "refunded")
    },
    "expense": Sample(
        "Expense",
        "expense.create",
        "expense",
        (
            ("vendor", "Vendor", "Serano Bakery"),
            ("category", "Category", "Meals and Entertainment"),
            *MONEY,
            ("notes", "Notes", "Team lunch"),
        ),
        build_expense,
    ),
    "client": Sample(
        "Client",
        "client.create",
        "client",
        (
            ("organization", "Organization", "Melmac Ltd"),
            ("fname", "First name", "Gordon"),
            ("lname", "Last name", "Shumway"),
            ("email", "Email", "gordon@melmac.example"),
        ),
        build_client,
    ),
    "time_entry": Sample(
        "Time entry",
        "time_entry.create",
        "time_entry",
        (
            ("note", "Note (a Jira key in it picks the issue)", "FIN-1 reconciling March"),
            ("minutes", "Minutes", "45"),
            ("project", "Project", "Bookkeeping"),
        ),
        build_time_entry,
    ),
}


def defaults(name):
    return {field: default for field, _label, default in SAMPLES[name].fields}


_streamed = itertools.count(1)


def stream_choice(rng=random, records=None):
    """(sample name, fields) for one stream tick: a random money kind with a varied amount and client; a
    payment pays one of the invoices held in `records` (none yet: an invoice instead)."""
    name = rng.choice(["invoice", "invoice", "bill", "payment_received", "expense"])
    invoices = (records or {}).get("invoice", {})
    if name == "payment_received" and not invoices:
        name = "invoice"
    fields = defaults(name)
    if name == "payment_received":
        fields["invoice"] = str(rng.choice(sorted(invoices)))  # pays what is outstanding
        return name, fields
    fields["amount"] = f"{rng.randint(20, 4000)}.{rng.randint(0, 99):02d}"
    if "client" in fields:
        fields["client"] = f"Stream customer {next(_streamed)}"
    return name, fields
