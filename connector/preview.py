"""The mapping "Preview": a mapping rendered against a shipped sample record, as the exact Jira request body.

Samples live in connector/samples/<kind>.json: {"record": {...}, "related": {...}} in the shape the worker
fetches (see connector.handlers); they come from FreshBooks' SDK fixtures (bills: hand-written, see _comment).
"""

import json
from pathlib import Path

from connector import ledger
from connector.jira import fields as field_types
from connector.jira.dialect import dialect_for
from connector.kinds import build_context, docs_for, kind_for
from connector.render import RenderError, render_fields

SAMPLES = Path(__file__).resolve().parent / "samples"


def load_sample(kind):
    """(record, related) of the shipped sample for `kind`, or None when there is none."""
    path = SAMPLES / f"{kind}.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return data["record"], data.get("related") or {}


def preview(mapping):
    """{"kind", "sample", "body", "error", "docs", "notes"} for `mapping`: body is what POST /issue would send,
    custom field values typed as Jira's kept field schemas (or the mapping's explicit types) say; notes: cuts."""
    declared = kind_for(mapping.event)
    kind = declared.name if declared else mapping.event.split(".", 1)[0]
    result = {"kind": kind, "body": None, "error": "", "docs": docs_for(kind), "sample": ""}
    sample = load_sample(kind) if declared else None
    if sample is None:
        result["error"] = (
            f"No sample record for {kind!r} events: issue mappings apply to invoice, bill, payment, expense and client events."
        )
        return result
    record, related = sample
    tenant = mapping.tenant
    account = tenant.freshbooks_accounts.first() if tenant else None
    site = getattr(tenant, "jira_site", None) if tenant else None
    context = build_context(
        kind, record, related=related, tenant=tenant, account=account, event_name=mapping.event
    )
    if kind == "payment" and mapping.payment_kind:
        context["payment_kind"] = mapping.payment_kind  # preview the kind this mapping is for
    users = {
        f"{role}_id": f"<Jira user matched to the {source}>"
        for role in ("reporter", "assignee")
        if (source := getattr(mapping, f"{role}_from"))
    }
    notes = []
    try:
        types = field_types.field_types_for(mapping, site)  # the types kept from Jira; nothing is asked here
        fields = render_fields(mapping, context, site, **users, types=types, notes=notes)
    except RenderError as exc:
        result["error"] = str(exc)
        return result
    object_id = str(record.get("id") or "")
    label = ledger.issue_label(tenant, kind, object_id)
    result["body"] = {
        "fields": ledger.with_label(fields, label),
        "properties": [{"key": ledger.PROPERTY_KEY, "value": ledger.marker(tenant, kind, object_id)}],
    }
    result["sample"] = f"{kind} {object_id}"
    result["notes"] = notes
    result["deployment"] = dialect_for(site).label
    return result
