"""Bills: issues on create (and update, when a mapping for it is enabled); fetched with their vendor."""

from connector.kinds.base import FRESHBOOKS_WEB, Kind, text, totals

DOCS = {
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
}


def build(record, related):
    vendor = related.get("vendor") or record.get("vendor") or {}
    return {
        "bill_number": text(record.get("bill_number")),
        "vendor_name": text(vendor.get("vendor_name")),
        "vendor": vendor,
        **totals(record, record.get("amount") or record.get("total_amount")),
        "issue_date": text(record.get("issue_date")),
        "due_date": text(record.get("due_date")),
        "status": text(record.get("status")),
        "category_name": text(record.get("overall_category")),
        "description": text(record.get("overall_description")),
    }


def related(fetch, bill):
    return {"vendor": bill.get("vendor") or fetch("bill_vendor", bill.get("vendorid"))}


def people(record, related):
    vendor = related.get("vendor") or {}
    return {"vendor": (vendor.get("vendorid") or record.get("vendorid"), vendor.get("primary_contact_email"))}


KIND = Kind(
    name="bill",
    scope="account",
    resource=("bills/bills", "bill"),
    writes="issue",
    build=build,
    docs=DOCS,
    related=related,
    people=people,
    link=FRESHBOOKS_WEB + "/bills/{id}",
    on_delete="bill deleted in FreshBooks: deletions are not synced to Jira issues",
)
