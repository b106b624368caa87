"""The template context of each FreshBooks resource kind: what a mapping's templates can use.

`build_context(kind, record, related=..., tenant=..., account=...)` turns a fetched FreshBooks record (and the
related records fetched with it: an invoice's client, a bill's vendor, an expense's category, a payment's invoice
and client, a time entry's project) into a flat dict of strings for Django templates. `CONTEXT_DOCS` describes
every key; the mapping admin and the README show it.

Vendor facts (research §3): money is `{"amount": "41.94", "code": "CAD"}` with the amount as a string (parsed as
Decimal, shown with two decimals); accounting datetimes are US/Eastern; time tracking uses UTC with `Z`.
Links back to FreshBooks follow the web app's URL scheme (`https://my.freshbooks.com/#/<kind>/<account>-<id>`);
FreshBooks does not document these URLs, so they are best effort.
"""

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from zoneinfo import ZoneInfo

FRESHBOOKS_WEB = "https://my.freshbooks.com/#"
# Where "Open in FreshBooks" points, per kind ({account}: accounting account id, {id}: the record id).
LINK_PATTERNS = {
    "invoice": FRESHBOOKS_WEB + "/invoice/{account}-{id}",
    "bill": FRESHBOOKS_WEB + "/bills/{id}",
    "expense": FRESHBOOKS_WEB + "/expense/{account}-{id}",
    "client": FRESHBOOKS_WEB + "/client/{account}-{id}",
    "time_entry": FRESHBOOKS_WEB + "/time-tracking",
}
EASTERN = ZoneInfo("America/New_York")

# Invoice `status` codes (FreshBooks API docs) for records without a `v3_status`.
INVOICE_STATUS = {0: "disputed", 1: "draft", 2: "sent", 3: "viewed", 4: "paid", 5: "auto-paid", 6: "retry",
                  7: "failed", 8: "partial"}  # fmt: skip

COMMON_DOCS = {
    "kind": "The resource kind (invoice, bill, payment, expense, time_entry, client).",
    "event": "The FreshBooks event name, e.g. invoice.create.",
    "object_id": "The FreshBooks id of the record.",
    "account_id": "The FreshBooks accounting account id.",
    "tenant": "The tenant's name.",
    "link": "A link back to the record in FreshBooks (payments: their invoice). Best effort: FreshBooks does "
    "not document its web URLs.",
    "updated": "When FreshBooks last changed the record (ISO 8601, UTC; FreshBooks sends US/Eastern).",
}

CONTEXT_DOCS = {
    "invoice": {
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
    },
    "bill": {
        "bill_number": "The vendor's bill number.",
        "vendor_name": "The vendor's name.",
        "vendor": "The vendor record: vendor.vendor_name, vendor.primary_contact_email, vendor.vendorid, …",
        "amount": "The bill total, two decimals.",
        "currency": "The currency code.",
        "outstanding": "The amount still owed, two decimals.",
        "paid": "The amount paid so far, two decimals.",
        "issue_date": "The bill's issue date (YYYY-MM-DD).",
        "due_date": "The due date (YYYY-MM-DD), empty when none.",
        "status": "unpaid, overdue, partial or paid.",
        "category_name": "The bill's overall category.",
        "description": "The bill's overall description.",
        "bill": "The whole FreshBooks bill record.",
    },
    "payment": {
        "amount": "The payment amount, two decimals (negative for a refund).",
        "currency": "The currency code.",
        "payment_kind": "received, failed or refunded (see the README: how each is detected).",
        "payment_type": 'The payment type, e.g. Check, Credit Card, "Refund".',
        "date": "The payment date (YYYY-MM-DD).",
        "note": "The payment note.",
        "invoice_number": "The paid invoice's number.",
        "invoice": "The paid invoice record (invoice.invoice_number, invoice.v3_status, …).",
        "client_name": 'The paying client\'s organization, else "first last".',
        "client": "The paying client record.",
        "gateway": "The payment gateway, empty for manual payments.",
        "transaction_id": "The gateway transaction id, empty when none.",
        "status": "Same as payment_kind.",
        "payment": "The whole FreshBooks payment record.",
    },
    "expense": {
        "amount": "The expense amount, two decimals.",
        "currency": "The currency code.",
        "category_name": "The expense category's name.",
        "category": "The expense category record.",
        "vendor_name": "The vendor (free text on expenses).",
        "date": "The expense date (YYYY-MM-DD).",
        "notes": "The expense notes.",
        "client_name": "The client the expense is for, empty when none.",
        "client": "That client's record (empty when none).",
        "status": "FreshBooks' expense status code.",
        "expense": "The whole FreshBooks expense record.",
    },
    "time_entry": {
        "note": "The time entry's note.",
        "duration": "Duration in seconds.",
        "hours": "Duration in hours, two decimals.",
        "started_at": "When the work started (ISO 8601, UTC).",
        "project_title": "The FreshBooks project's title, empty when none.",
        "project": "The FreshBooks project record.",
        "client_id": "The FreshBooks client id.",
        "service_id": "The FreshBooks service id.",
        "time_entry": "The whole FreshBooks time entry record.",
    },
    "client": {
        "client_name": 'The client\'s organization, else "first last".',
        "organization": "The client's organization.",
        "email": "The client's email address.",
        "fname": "First name.",
        "lname": "Last name.",
        "client": "The whole FreshBooks client record.",
    },
}

KINDS = tuple(CONTEXT_DOCS)


def money(value):
    """`{"amount": "41.9", "code": "CAD"}` (or a bare number) → ("41.90", "CAD"); ("", "") when missing."""
    code = ""
    if isinstance(value, dict):
        code = value.get("code") or ""
        value = value.get("amount")
    if value in (None, ""):
        return "", code
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        return str(amount if amount else abs(amount)), code  # never "-0.00"
    except InvalidOperation:
        return "", code


def decimal_amount(value):
    """The Decimal of a money value, or None."""
    text, _ = money(value)
    return Decimal(text) if text else None


def person_name(record):
    """Organization, else "first last", else email; "" when the record has none of them."""
    if not record:
        return ""
    name = (record.get("organization") or "").strip()
    if not name:
        name = f"{record.get('fname') or ''} {record.get('lname') or ''}".strip()
    return name or (record.get("email") or "").strip()


def eastern_to_utc(text):
    """A FreshBooks accounting datetime ("2021-04-16 10:31:58", US/Eastern) → ISO 8601 UTC; "" if unparsable."""
    if not text:
        return ""
    try:
        parsed = datetime.fromisoformat(str(text))
    except ValueError:
        return ""
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=EASTERN)
    return parsed.astimezone(UTC).isoformat()


def link_for(kind, account_id, object_id):
    pattern = LINK_PATTERNS.get(kind)
    return pattern.format(account=account_id, id=object_id) if pattern else ""


def _text(value):
    return "" if value is None else str(value)


def build_context(kind, record, *, related=None, tenant=None, account=None, event_name=""):
    """The template context for `record` of `kind` (see CONTEXT_DOCS). Never raises for missing fields."""
    record = record or {}
    related = related or {}
    account_id = getattr(account, "account_id", "") or _text(record.get("accountid"))
    object_id = _text(record.get("id"))
    context = {
        "kind": kind,
        "event": event_name,
        "object_id": object_id,
        "account_id": account_id,
        "tenant": getattr(tenant, "name", ""),
        "link": link_for(kind, account_id, object_id),
        "updated": eastern_to_utc(record.get("updated") or record.get("updated_at")),
        kind: record,
    }
    context.update(BUILDERS[kind](record, related))
    if kind == "payment" and context["invoice"].get("id"):  # a payment is seen on its invoice
        context["link"] = link_for("invoice", account_id, context["invoice"]["id"])
    return context


def _totals(record, total):
    """amount, currency, outstanding and paid of an invoice or bill (money as two-decimal strings)."""
    amount, currency = money(total)
    return {
        "amount": amount,
        "currency": currency or _text(record.get("currency_code")),
        "outstanding": money(record.get("outstanding"))[0],
        "paid": money(record.get("paid"))[0],
    }


def _invoice(record, related):
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
        "invoice_number": _text(record.get("invoice_number")),
        "client_name": organization.strip() or person_name(record) or person_name(client),
        "organization": organization,
        "client": client,
        **_totals(record, record.get("amount")),
        "create_date": _text(record.get("create_date")),
        "due_date": _text(record.get("due_date")),
        "status": _text(status),
        "payment_status": _text(record.get("payment_status")),
        "description": _text(record.get("description")),
        "notes": _text(record.get("notes")),
        "po_number": _text(record.get("po_number")),
        "lines": [
            {
                "name": _text(line.get("name")),
                "description": _text(line.get("description")),
                "qty": _text(line.get("qty")),
                "amount": money(line.get("amount"))[0],
            }
            for line in record.get("lines") or []
        ],
    }


def _bill(record, related):
    vendor = related.get("vendor") or record.get("vendor") or {}
    return {
        "bill_number": _text(record.get("bill_number")),
        "vendor_name": _text(vendor.get("vendor_name")),
        "vendor": vendor,
        **_totals(record, record.get("amount") or record.get("total_amount")),
        "issue_date": _text(record.get("issue_date")),
        "due_date": _text(record.get("due_date")),
        "status": _text(record.get("status")),
        "category_name": _text(record.get("overall_category")),
        "description": _text(record.get("overall_description")),
    }


# Payment kinds. FreshBooks has no payment "status": a refund is a payment with a negative amount or a
# refund type; a failed online payment shows on its invoice (v3_status failed/declined, or status 7).
REFUND_TYPES = {"refund", "credit refund", "refunded"}
FAILED_INVOICE_STATES = {"failed", "declined"}


def payment_kind(payment, invoice=None):
    """received, failed or refunded (documented in the README, "Mappings and templates")."""
    invoice = invoice or {}
    amount = decimal_amount(payment.get("amount"))
    kind = str(payment.get("type") or "").strip().lower()
    if (amount is not None and amount < 0) or kind in REFUND_TYPES or "refund" in kind:
        return "refunded"
    state = str(payment.get("status") or "").strip().lower()
    invoice_state = str(invoice.get("v3_status") or "").strip().lower()
    if state in FAILED_INVOICE_STATES or invoice_state in FAILED_INVOICE_STATES or invoice.get("status") == 7:
        return "failed"
    return "received"


def _payment(record, related):
    invoice = related.get("invoice") or {}
    client = related.get("client") or {}
    amount, currency = money(record.get("amount"))
    return {
        "amount": amount,
        "currency": currency or _text(invoice.get("currency_code")),
        "payment_kind": payment_kind(record, invoice),
        "payment_type": _text(record.get("type")),
        "date": _text(record.get("date")),
        "note": _text(record.get("note")),
        "invoice_number": _text(invoice.get("invoice_number")),
        "invoice": invoice,
        "client_name": person_name(client) or person_name(invoice),
        "client": client,
        "gateway": _text(record.get("gateway")),
        "transaction_id": _text(record.get("transactionid")),
        "status": payment_kind(record, invoice),
    }


def _expense(record, related):
    category = related.get("category") or record.get("category") or {}
    client = related.get("client") or {}
    amount, currency = money(record.get("amount"))
    return {
        "amount": amount,
        "currency": currency,
        "category_name": _text(category.get("category")),
        "category": category,
        "vendor_name": _text(record.get("vendor")),
        "date": _text(record.get("date")),
        "notes": _text(record.get("notes")),
        "client_name": person_name(client),
        "client": client,
        "status": _text(record.get("status")),
    }


def _time_entry(record, related):
    project = related.get("project") or {}
    duration = record.get("duration") or 0
    return {
        "note": _text(record.get("note")),
        "duration": duration,
        "hours": str((Decimal(int(duration)) / 3600).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)),
        "started_at": _text(record.get("started_at")),
        "project_title": _text(project.get("title")),
        "project": project,
        "client_id": _text(record.get("client_id")),
        "service_id": _text(record.get("service_id")),
    }


def _client(record, related):
    return {
        "client_name": person_name(record),
        "organization": _text(record.get("organization")),
        "email": _text(record.get("email")),
        "fname": _text(record.get("fname")),
        "lname": _text(record.get("lname")),
    }


BUILDERS = {
    "invoice": _invoice,
    "bill": _bill,
    "payment": _payment,
    "expense": _expense,
    "time_entry": _time_entry,
    "client": _client,
}


def docs_for(kind):
    """Every documented key of `kind` (its own, then the common ones)."""
    return {**CONTEXT_DOCS.get(kind, {}), **COMMON_DOCS}
