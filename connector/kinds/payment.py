"""Payments: issues on create, per payment kind (received, failed, refunded); fetched with their invoice and
client, and linked to their invoice in FreshBooks."""

from connector.kinds.base import Kind, client_people, decimal_amount, money, person_name, text

# Payment kinds. FreshBooks has no payment "status": a refund is a payment with a negative amount or a
# refund type; a failed online payment shows on its invoice (v3_status failed/declined, or status 7).
REFUND_TYPES = {"refund", "credit refund", "refunded"}
FAILED_INVOICE_STATES = {"failed", "declined"}

DOCS = {
    "amount": "The payment amount, two decimals (negative for a refund).",
    "currency": "The currency code.",
    "payment_kind": "received, failed or refunded (see docs/mappings.md, Payment kind: how each is detected).",
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
}


def payment_kind(payment, invoice=None):
    """received, failed or refunded (documented in docs/mappings.md, "Payment kind")."""
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


def build(record, related):
    invoice = related.get("invoice") or {}
    client = related.get("client") or {}
    amount, currency = money(record.get("amount"))
    return {
        "amount": amount,
        "currency": currency or text(invoice.get("currency_code")),
        "payment_kind": payment_kind(record, invoice),
        "payment_type": text(record.get("type")),
        "date": text(record.get("date")),
        "note": text(record.get("note")),
        "invoice_number": text(invoice.get("invoice_number")),
        "invoice": invoice,
        "client_name": person_name(client) or person_name(invoice),
        "client": client,
        "gateway": text(record.get("gateway")),
        "transaction_id": text(record.get("transactionid")),
        "status": payment_kind(record, invoice),
    }


def related(fetch, payment):
    invoice = fetch("invoice", payment.get("invoiceid"))
    client_id = payment.get("clientid") or (invoice or {}).get("customerid")
    return {"invoice": invoice, "client": fetch("client", client_id)}


KIND = Kind(
    name="payment",
    scope="account",
    resource=("payments/payments", "payment"),
    writes="issue",
    build=build,
    docs=DOCS,
    related=related,
    people=client_people,
    link_via="invoice",
    on_delete="payment deleted in FreshBooks: deletions are not synced to Jira issues",
)
