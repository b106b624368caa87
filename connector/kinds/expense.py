"""Expenses: issues on create (and update, when a mapping for it is enabled); fetched with their category
(`include[]=category`) and client."""

from connector.kinds.base import FRESHBOOKS_WEB, Kind, client_people, money, person_name, text

DOCS = {
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
}


def build(record, related):
    category = related.get("category") or record.get("category") or {}
    client = related.get("client") or {}
    amount, currency = money(record.get("amount"))
    return {
        "amount": amount,
        "currency": currency,
        "category_name": text(category.get("category")),
        "category": category,
        "vendor_name": text(record.get("vendor")),
        "date": text(record.get("date")),
        "notes": text(record.get("notes")),
        "client_name": person_name(client),
        "client": client,
        "status": text(record.get("status")),
    }


def related(fetch, expense):
    category = expense.get("category") or fetch("expense_category", expense.get("categoryid"))
    return {"category": category, "client": fetch("client", expense.get("clientid"))}


KIND = Kind(
    name="expense",
    scope="account",
    resource=("expenses/expenses", "expense"),
    writes="issue",
    build=build,
    docs=DOCS,
    related=related,
    people=client_people,
    includes=("category",),
    link=FRESHBOOKS_WEB + "/expense/{account}-{id}",
    on_delete="expense deleted in FreshBooks: deletions are not synced to Jira issues",
)
