"""Accounting records → Jira issues: the tenant's mapping rendered and written through the ledger.

Mapping selection: the tenant's enabled mappings for the event name, in order; for payments only those whose
payment kind is blank ("any") or equal to the detected kind (connector.kinds.payment.payment_kind); the first
whose condition renders true wins (one Jira issue per FreshBooks object). `*.update` events act only when a
mapping for them is enabled, and then update the linked issue. Deletions are not synced to issues.
"""

from connector import ledger
from connector.errors import JiraError
from connector.handlers.job import Skip, fetch, fetch_with_related
from connector.handlers.people import forget_auto_match, match_user, users_for
from connector.jira import fields as field_types
from connector.jira import screens
from connector.kinds import build_context
from connector.models import IssueMapping
from connector.render import condition_holds, render_fields


def candidate_mappings(job):
    return list(
        IssueMapping.objects.filter(tenant=job.tenant, enabled=True, event=job.event.name).order_by(
            "order", "id"
        )
    )


def choose_mapping(mappings, context):
    for mapping in mappings:
        if mapping.payment_kind and mapping.payment_kind != context.get("payment_kind"):
            continue
        if condition_holds(mapping, context):
            return mapping
    return None


def render_issue(job, mappings, record, related):
    """(mapping, fields, types, notes, users, context): the first applicable mapping rendered into Jira fields.
    Raises Skip when no mapping applies; a JiraError from a field-schema or user look-up."""
    context = build_context(
        job.kind, record, related=related, tenant=job.tenant, account=job.account, event_name=job.event.name
    )
    mapping = choose_mapping(mappings, context)
    if mapping is None:
        kind = context.get("payment_kind")
        if kind and not any(m.payment_kind in ("", kind) for m in mappings):
            raise Skip(f"no enabled mapping for {job.event.name} with payment kind {kind}")
        raise Skip(f"no mapping applies: the conditions of {len(mappings)} enabled mapping(s) are not met")
    users = users_for(job, mapping, job.declared.people(record, related))
    if job.action != "update":
        screens.issue_type_id(job.jira, mapping)  # creates name the issue type by its id
    types = field_types.field_types_for(mapping, job.jira.site, job.jira)
    notes = []
    fields = render_fields(mapping, context, job.site, **users, types=types, notes=notes)
    return mapping, fields, types, notes, users, context


def write_issue(job, mappings, record, related):
    """Render the first applicable mapping and create (or, for *.update, update) the object's issue."""
    mapping, fields, types, notes, users, context = render_issue(job, mappings, record, related)
    try:
        outcome = _write(job, mapping, fields)
    except JiraError as exc:
        if screens.issue_type_refused(exc) and screens.forget_issue_type(job.jira, mapping):
            # The kept issue type id is stale (the type was replaced in Jira): asked again, sent once more.
            job.notes.append(
                f"issue type “{mapping.issue_type}” of {mapping.project_key} asked again from Jira"
            )
            fields = render_fields(mapping, context, job.site, **users, types=types, notes=[])
            return _write(job, mapping, fields)
        # Jira refused a custom field's value: its type may have changed since we last asked. Ask again, and
        # send once more only when that changes how a refused field is typed.
        refused = field_types.refused(exc) & set(types)
        if not refused:
            raise
        field_types.refresh(job.jira)
        retyped = field_types.field_types_for(mapping, job.jira.site)
        if all(retyped[f] == types[f] for f in refused):
            raise
        job.notes.append(
            f"types of {', '.join(sorted(refused))} refreshed from Jira after it refused a value"
        )
        notes = []
        fields = render_fields(mapping, context, job.site, **users, types=retyped, notes=notes)
        outcome = _write(job, mapping, fields)
    if notes:  # texts cut to Jira's limits
        outcome.detail = "; ".join(filter(None, [outcome.detail, *notes]))
    return outcome


def _write(job, mapping, fields):
    """Create the object's issue, or for *.update update the linked one, with the rendered `fields`."""
    if job.action == "update":
        link = ledger.issue_link(job.tenant, job.kind, job.event.object_id)
        if link is None:
            raise Skip(f"no Jira issue is linked to {job.kind} {job.event.object_id}: nothing to update")
        ledger.update_issue(client=job.jira, link=link, fields=fields, event=job.event, notes=job.notes)
        return job.done(link.jira_issue_key, f"updated {link.jira_issue_key} (mapping “{mapping.name}”)")
    link = ledger.ensure_issue(
        client=job.jira,
        tenant=job.tenant,
        object_type=job.kind,
        object_id=job.event.object_id,
        fields=fields,
        event=job.event,
        notes=job.notes,
    )
    if not ledger.is_created(link):
        raise Skip(
            f"the Jira issue {link.jira_issue_key} of this {job.kind} was {link.get_state_display().lower()}: not re-created"
        )
    return job.done(link.jira_issue_key, f"issue {link.jira_issue_key} (mapping “{mapping.name}”)")


def handle_issue(job):
    """An accounting record (invoice, bill, payment, expense) → its issue, created or updated."""
    if job.action == "delete":
        raise Skip(job.declared.on_delete)
    mappings = candidate_mappings(job)
    if not mappings:
        raise Skip(f"no enabled mapping for {job.event.name}")
    record, related = fetch_with_related(job)
    return write_issue(job, mappings, record, related)


def handle_client(job):
    """Clients become Jira user matches (reporter/assignee); an issue only when a mapping asks for one."""
    if job.action == "delete":
        raise Skip(job.declared.on_delete)
    record = fetch(job, "client", job.event.object_id)
    job.store({"client": record})
    forget_auto_match(job, "client", job.event.object_id)  # a changed email may match someone else
    user = match_user(job, "client", (job.event.object_id, record.get("email")))
    job.notes.append(f"matched to Jira user {user}" if user else "no Jira user matches this client's email")
    mappings = candidate_mappings(job)
    if mappings:
        return write_issue(job, mappings, record, {})
    if user:
        return job.done()
    raise Skip("; ".join(job.notes))
