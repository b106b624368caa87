"""Invoices: issues on create (and update, when a mapping for it is enabled); fetched with their lines
(`include[]=lines`: FreshBooks returns an invoice without them unless asked) and their client."""

from connector.kinds.base import FRESHBOOKS_WEB, Kind, client_people, money, person_name, text, totals

# Invoice `status` codes (FreshBooks API docs) for records without a `v3_status`.
INVOICE_STATUS = {
    0: "disputed",
    1: "draft",
    2: "sent",
    3: "viewed",
    4: "paid",
    5: "auto-paid",
    6: "retry",
    7: "failed",
    8: "partial",
}

DOCS = {
    "invoice_number": "The invoice number, e.g. ACM0002.",
    "client_name": 'The client\'s organization, else "first last".',
    "organization": "The client's organization (may be empty).",
    "client": "The client record: client.email, client.fname, client.lname, client.organization, client.id.",
    "amount": "The invoice total, two decimals, e.g. 41.94 (may be zero or negative).",
    "currency": "The currency code, e.g. CAD.",
    "outstanding": "The amount still owed, two decimals.",
    "paid": "The amount paid so far, two decimals.",
    "create_date": "The invoice date (YYYY-MM-DD).",
    "due_date": "The due date (YYYY-MM-DD), empty when none.",
    "status": "The invoice status, e.g. draft, sent, viewed, paid, partial, failed.",
    "payment_status": "unpaid, partial, paid or auto-paid.",
    "description": "The invoice description.",
    "notes": "The invoice notes.",
    "po_number": "The PO number, empty when none.",
    "lines": "The invoice lines: each with name, description, qty, amount.",
    "invoice": "The whole FreshBooks invoice record.",
}


def build(record, related):
    client = related.get("client") or {
        "id": record.get("customerid"),
        "fname": record.get("fname"),
        "lname": record.get("lname"),
        "organization": record.get("current_organization") or record.get("organization"),
        "email": None,
    }
    status = (
        record.get("v3_status") or record.get("display_status") or INVOICE_STATUS.get(record.get("status"))
    )
    organization = record.get("current_organization") or record.get("organization") or ""
    return {
        "invoice_number": text(record.get("invoice_number")),
        "client_name": organization.strip() or person_name(record) or person_name(client),
        "organization": organization,
        "client": client,
        **totals(record, record.get("amount")),
        "create_date": text(record.get("create_date")),
        "due_date": text(record.get("due_date")),
        "status": text(status),
        "payment_status": text(record.get("payment_status")),
        "description": text(record.get("description")),
        "notes": text(record.get("notes")),
        "po_number": text(record.get("po_number")),
        "lines": [
            {
                "name": text(line.get("name")),
                "description": text(line.get("description")),
                "qty": text(line.get("qty")),
                "amount": money(line.get("amount"))[0],
            }
            for line in record.get("lines") or []
        ],
    }


def related(fetch, invoice):
    return {"client": fetch("client", invoice.get("customerid"))}


KIND = Kind(
    name="invoice",
    scope="account",
    resource=("invoices/invoices", "invoice"),
    writes="issue",
    build=build,
    docs=DOCS,
    related=related,
    people=client_people,
    includes=("lines",),
    link=FRESHBOOKS_WEB + "/invoice/{account}-{id}",
    on_delete="invoice deleted in FreshBooks: deletions are not synced to Jira issues",
)
