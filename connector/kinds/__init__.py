"""The FreshBooks resource kinds the connector syncs, each declared once (connector/kinds/<kind>.py).

Registry API (read by webhook registration and ingestion, the task and handlers, Preview, defaults and the
mapping form):

- `KINDS`: {name: Kind} in display order; `EVENTS`: every declared event name, e.g. "invoice.create";
- `kind_for(event_name)`: the Kind declaring that event, or None (the event is refused where it enters);
- `MAPPING_EVENTS` / `mapping_event_choices()`: the events an issue mapping can be written for;
- `build_context(kind, record, related=..., tenant=..., account=..., event_name=...)`: a record's template
  context (flat dict for Django templates; never raises for missing fields); `docs_for(kind)`: its keys.

Adding a kind: see docs/architecture.md, "Adding a kind".
"""

from connector.kinds import bill, client, expense, invoice, payment, time_entry
from connector.kinds.base import COMMON_DOCS, Kind, eastern_to_utc, money, text
from connector.kinds.payment import payment_kind

KINDS = {
    kind.name: kind
    for kind in (invoice.KIND, bill.KIND, payment.KIND, expense.KIND, time_entry.KIND, client.KIND)
}
EVENTS = tuple(event for kind in KINDS.values() for event in kind.events)
_BY_EVENT = {event: kind for kind in KINDS.values() for event in kind.events}
# Issue mappings apply to the kinds that can become issues (time entries become worklogs through rules).
MAPPING_EVENTS = tuple(event for kind in KINDS.values() if kind.writes != "worklog" for event in kind.events)
CONTEXT_DOCS = {name: kind.docs for name, kind in KINDS.items()}

__all__ = [
    "COMMON_DOCS",
    "CONTEXT_DOCS",
    "EVENTS",
    "KINDS",
    "MAPPING_EVENTS",
    "Kind",
    "build_context",
    "docs_for",
    "kind_for",
    "mapping_event_choices",
    "mapping_handles",
    "money",
    "payment_kind",
]


def kind_for(event_name):
    """The Kind that declares `event_name` ("invoice.create"), or None."""
    return _BY_EVENT.get(event_name)


def mapping_event_choices():
    return [(event, event) for event in MAPPING_EVENTS]


def mapping_handles(event_name):
    """Whether an issue mapping on `event_name` is ever used: not for a `<kind>.delete` whose kind writes
    nothing on delete (`Kind.on_delete` says why), which the mapping form therefore does not offer."""
    kind = kind_for(event_name)
    return kind is not None and not (event_name.endswith(".delete") and kind.on_delete)


def build_context(kind, record, *, related=None, tenant=None, account=None, event_name=""):
    """The template context for `record` of `kind` (a name; see CONTEXT_DOCS). Never raises for missing fields."""
    declared = KINDS[kind]
    record = record or {}
    related = related or {}
    account_id = getattr(account, "account_id", "") or text(record.get("accountid"))
    object_id = text(record.get("id"))
    context = {
        "kind": kind,
        "event": event_name,
        "object_id": object_id,
        "account_id": account_id,
        "tenant": getattr(tenant, "name", ""),
        "link": declared.link_for(account_id, object_id),
        "updated": eastern_to_utc(record.get("updated") or record.get("updated_at")),
        kind: record,
    }
    context.update(declared.build(record, related))
    via = context.get(declared.link_via) if declared.link_via else None
    if isinstance(via, dict) and via.get("id"):  # e.g. a payment is seen on its invoice
        context["link"] = KINDS[declared.link_via].link_for(account_id, via["id"])
    return context


def docs_for(kind):
    """Every documented key of `kind` (its own, then the common ones)."""
    return {**CONTEXT_DOCS.get(kind, {}), **COMMON_DOCS}
