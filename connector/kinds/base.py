"""What a FreshBooks resource kind is (`Kind`), and the helpers its template context is built with.

Each kind is declared once in its own module (connector/kinds/<kind>.py) and registered in
connector/kinds/__init__.py, which every reader uses: webhook registration, ingestion, the task, handlers,
Preview, defaults and the mapping form's event choices.

Vendor facts (https://www.freshbooks.com/api/invoices, .../api/time_entries): money is `{"amount": "41.94", "code": "CAD"}` with the amount as a string (parsed as
Decimal, shown with two decimals); accounting datetimes are US/Eastern; time tracking uses UTC with `Z`.
Links back to FreshBooks follow the web app's URL scheme (`https://my.freshbooks.com/#/<kind>/<account>-<id>`);
FreshBooks does not document these URLs, so they are best effort.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from zoneinfo import ZoneInfo

FRESHBOOKS_WEB = "https://my.freshbooks.com/#"
EASTERN = ZoneInfo("America/New_York")
ACTIONS = ("create", "update", "delete")
ACTIVE, DELETED, ARCHIVED = "active", "deleted", "archived"

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


def vis_state(record):
    """An accounting record's state from its ``vis_state``: 0 active, 1 deleted, 2 archived (FreshBooks deletes
    by setting it to 1 and keeps serving the record; https://www.freshbooks.com/api/active_deleted). ACTIVE when the field is missing."""
    value = str(record.get("vis_state", 0) if isinstance(record, dict) else 0).strip()
    return {"1": DELETED, "2": ARCHIVED}.get(value, ACTIVE)


@dataclass(frozen=True)
class Kind:
    """One FreshBooks resource kind, declared once.

    name       the FreshBooks event prefix and the ledger's object type, e.g. "invoice"
    scope      where FreshBooks keeps it: "account" (/accounting/account/<account id>/…) or "business"
               (/timetracking/business/<business id>/…: time entries, path in connector.freshbooks.client)
    resource   account kinds: (path under the account, key of the single record), e.g.
               ("invoices/invoices", "invoice")
    writes     what its events become in Jira, naming the handler: "issue", "worklog" or "user" (a Jira user
               match, and an issue only when a mapping asks)
    build      build(record, related) → the kind's own template context keys (documented in `docs`)
    docs       {context key: what it holds}
    related    related(fetch, record) → {name: record or None}: the records fetched with it; `fetch(kind, id)`
               returns None for a missing id or a record FreshBooks no longer has
    includes   `include[]` values asked for when fetching it
    people     people(record, related) → {"client"|"vendor": (FreshBooks id, email)} for reporter/assignee
    link       the FreshBooks web URL pattern ({account}, {id}); `link_via` names a related record whose
               link is used instead (payments point at their invoice)
    on_delete  why a `<kind>.delete` event writes nothing (None: the handler deletes what it wrote)
    actions    the event actions FreshBooks sends for it: events are "<name>.<action>"
    state      state(record) → ACTIVE, DELETED or ARCHIVED: how a fetched record's deleted state reads
               (accounting records: `vis_state`, FreshBooks still serves soft-deleted ones with 200)
    """

    name: str
    scope: str
    writes: str
    build: Callable
    docs: dict
    resource: tuple = ()
    related: Callable = field(default=lambda fetch, record: {})
    includes: tuple = ()
    people: Callable = field(default=lambda record, related: {})
    link: str = ""
    link_via: str = ""
    on_delete: str | None = None
    actions: tuple = ACTIONS
    state: Callable = vis_state

    @property
    def events(self):
        return tuple(f"{self.name}.{action}" for action in self.actions)

    @property
    def label(self):
        return self.name.replace("_", " ")

    def link_for(self, account_id, object_id):
        return self.link.format(account=account_id, id=object_id) if self.link else ""


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


def text(value):
    """None → "", anything else → str."""
    return "" if value is None else str(value)


def totals(record, total):
    """amount, currency, outstanding and paid of an invoice or bill (money as two-decimal strings)."""
    amount, currency = money(total)
    return {
        "amount": amount,
        "currency": currency or text(record.get("currency_code")),
        "outstanding": money(record.get("outstanding"))[0],
        "paid": money(record.get("paid"))[0],
    }


def client_people(record, related):
    """The record's FreshBooks client (fetched with it, else the record's own client id) for reporter/assignee."""
    client = related.get("client") or {}
    client_id = client.get("id") or record.get("customerid") or record.get("clientid")
    return {"client": (client_id, client.get("email"))}
