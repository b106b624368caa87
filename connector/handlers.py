"""One small handler per FreshBooks resource kind, chosen through HANDLERS (like Zulip's webhook integrations).

A handler gets a Job (the event, its tenant, FreshBooks account, Jira site and API clients), fetches what it
needs from FreshBooks, stores it encrypted on `event.record`, and writes to Jira only through the ledger
(connector.ledger), which makes every write exactly-once. It returns an Outcome; vendor failures are raised
(JiraError, FreshBooksError, ReconnectRequired, …) and turned into the event's status by connector.tasks.

Mapping selection: the tenant's enabled mappings for the event name, in order; for payments only those whose
payment kind is blank ("any") or equal to the detected kind (connector.context.payment_kind); the first whose
condition renders true wins (one Jira issue per FreshBooks object). `*.update` events act only when a mapping
for them is enabled, and then update the linked issue. Deletions are not synced to issues (worklogs are deleted).
"""

import re
from dataclasses import dataclass, field

from connector import ledger
from connector.context import build_context, payment_kind
from connector.freshbooks.client import FreshBooksError
from connector.jira import fields as field_types
from connector.jira.client import JiraError
from connector.models import IssueMapping, JiraUserMatch, Link, WorklogRule
from connector.records import Skip, embedded, fetch, fetch_related
from connector.render import TEXT_MAX, fit_text

AUTO_MATCH_NOTE = "Found by Jira user search on the FreshBooks email"
ISSUE_KEY = re.compile(r"\b[A-Z][A-Z0-9]+-\d+\b")


@dataclass
class Outcome:
    status: str  # an audit.Event status: succeeded or skipped
    jira_key: str = ""
    detail: str = ""


@dataclass
class Job:
    event: object
    tenant: object
    account: object
    site: object
    fb: object  # FreshBooksClient(account, event=event)
    jira: object  # JiraClient(site, event=event)
    notes: list = field(default_factory=list)

    @property
    def kind(self):
        return self.event.name.split(".", 1)[0]

    @property
    def action(self):
        return self.event.name.split(".", 1)[1] if "." in self.event.name else ""

    def store(self, records):
        """Keep what was fetched, encrypted, on the event (visible in the admin)."""
        self.event.record = records
        self.event.save(update_fields=["record"])

    def done(self, jira_key="", detail=""):
        return Outcome("succeeded", jira_key, "; ".join([detail, *self.notes]).strip("; "))


def related_invoice(job, invoice):
    return {"client": fetch_related(job, "client", invoice.get("customerid"))}


def related_bill(job, bill):
    vendor = embedded(job, "bill_vendor", bill.get("vendor"), "vendorid") or fetch_related(
        job, "bill_vendor", bill.get("vendorid")
    )
    return {"vendor": vendor}


def related_payment(job, payment):
    invoice = fetch_related(job, "invoice", payment.get("invoiceid"))
    client_id = payment.get("clientid") or (invoice or {}).get("customerid")
    return {"invoice": invoice, "client": fetch_related(job, "client", client_id)}


def related_expense(job, expense):
    category = embedded(job, "expense_category", expense.get("category"), "categoryid") or fetch_related(
        job, "expense_category", expense.get("categoryid")
    )
    return {"category": category, "client": fetch_related(job, "client", expense.get("clientid"))}


# People → Jira users -------------------------------------------------------------------------------------


def people(kind, record, related):
    """The FreshBooks client and vendor of a record as (id, email) for reporter/assignee matching."""
    client = related.get("client") or {}
    found = {}
    if kind == "client":
        found["client"] = (record.get("id") or record.get("userid"), record.get("email"))
    elif kind in ("invoice", "payment", "expense"):
        client_id = client.get("id") or record.get("customerid") or record.get("clientid")
        found["client"] = (client_id, client.get("email"))
    if kind == "bill":
        vendor = related.get("vendor") or {}
        found["vendor"] = (
            vendor.get("vendorid") or record.get("vendorid"),
            vendor.get("primary_contact_email"),
        )
    return found


def match_user(job, kind, person):
    """The Jira user id for a FreshBooks client/vendor: an explicit JiraUserMatch row, else Jira's user
    search by email (the answer is cached as a match row). None when there is no match."""
    fb_id, email = person if person else (None, None)
    fb_id = "" if fb_id in (None, 0, "0") else str(fb_id)
    if fb_id:
        row = JiraUserMatch.objects.filter(tenant=job.tenant, kind=kind, freshbooks_id=fb_id).first()
        if row:
            return row.jira_account_id
    if not email:
        return None
    account_id = job.jira.find_user(email)
    if account_id and fb_id:
        JiraUserMatch.objects.get_or_create(
            tenant=job.tenant, kind=kind, freshbooks_id=fb_id,
            defaults={"jira_account_id": account_id, "note": AUTO_MATCH_NOTE},
        )  # fmt: skip
    return account_id


def users_for(job, mapping, persons):
    found = {}
    for role in ("reporter", "assignee"):
        source = getattr(mapping, f"{role}_from")
        if not source:
            continue
        try:
            user = match_user(job, source, persons.get(source))
        except JiraError as exc:  # e.g. no "Browse users" permission: the issue is still worth creating
            job.notes.append(f"{role} left unset: Jira user search failed ({exc})")
            continue
        if user:
            found[f"{role}_id"] = user
        else:
            fb_id = (persons.get(source) or (None,))[0]
            job.notes.append(
                f"{role} left unset: no Jira user matches the FreshBooks {source} {fb_id or ''}".strip()
            )
    return found


# Issues --------------------------------------------------------------------------------------------------


def candidate_mappings(job):
    return list(
        IssueMapping.objects.filter(tenant=job.tenant, enabled=True, event=job.event.name).order_by(
            "order", "id"
        )
    )


def choose_mapping(mappings, context):
    from connector.render import condition_holds

    for mapping in mappings:
        if mapping.payment_kind and mapping.payment_kind != context.get("payment_kind"):
            continue
        if condition_holds(mapping, context):
            return mapping
    return None


def write_issue(job, mappings, record, related):
    """Render the first applicable mapping and create (or, for *.update, update) the object's issue."""
    from connector.render import render_fields

    context = build_context(
        job.kind, record, related=related, tenant=job.tenant, account=job.account, event_name=job.event.name
    )
    mapping = choose_mapping(mappings, context)
    if mapping is None:
        kind = context.get("payment_kind")
        if kind and not any(m.payment_kind in ("", kind) for m in mappings):
            raise Skip(f"no enabled mapping for {job.event.name} with payment kind {kind}")
        raise Skip(f"no mapping applies: the conditions of {len(mappings)} enabled mapping(s) are not met")
    users = users_for(job, mapping, people(job.kind, record, related))
    kinds = field_types.kinds_for(mapping, job.jira.site, job.jira)
    notes = []
    fields = render_fields(mapping, context, job.site, **users, kinds=kinds, notes=notes)
    try:
        outcome = _write(job, mapping, fields)
    except JiraError as exc:
        # Jira refused a custom field's value: its type may have changed since we last asked. Ask again, and
        # send once more only when that changes how a refused field is typed.
        refused = field_types.refused(exc) & set(kinds)
        if not refused:
            raise
        field_types.refresh(job.jira)
        retyped = field_types.kinds_for(mapping, job.jira.site)
        if all(retyped[f] == kinds[f] for f in refused):
            raise
        job.notes.append(
            f"types of {', '.join(sorted(refused))} refreshed from Jira after it refused a value"
        )
        notes = []
        fields = render_fields(mapping, context, job.site, **users, kinds=retyped, notes=notes)
        outcome = _write(job, mapping, fields)
    if notes:
        outcome.detail = "; ".join(filter(None, [outcome.detail, *notes]))
    return outcome


def _write(job, mapping, fields):
    """Create the object's issue, or for *.update update the linked one, with the rendered `fields`."""
    if job.action == "update":
        link = (
            Link.objects.filter(
                tenant=job.tenant, purpose=Link.Purpose.ISSUE, object_type=job.kind,
                object_id=job.event.object_id,
                state__in=[Link.State.CREATED, Link.State.IN_DOUBT, Link.State.PENDING],
            ).first()
        )  # fmt: skip
        if link is None:
            raise Skip(f"no Jira issue is linked to {job.kind} {job.event.object_id}: nothing to update")
        ledger.update_issue(client=job.jira, link=link, fields=fields, event=job.event)
        return job.done(link.jira_issue_key, f"updated {link.jira_issue_key} (mapping “{mapping.name}”)")
    link = ledger.ensure_issue(
        client=job.jira, tenant=job.tenant, object_type=job.kind, object_id=job.event.object_id,
        fields=fields, event=job.event,
    )  # fmt: skip
    if link.state != Link.State.CREATED:
        raise Skip(
            f"the Jira issue {link.jira_issue_key} of this {job.kind} was {link.get_state_display().lower()}: not re-created"
        )
    return job.done(link.jira_issue_key, f"issue {link.jira_issue_key} (mapping “{mapping.name}”)")


def issue_handler(related_of):
    """A handler for an accounting kind whose events become issues."""

    def handle(job):
        if job.action == "delete":
            raise Skip(f"{job.kind} deleted in FreshBooks: deletions are not synced to Jira issues")
        mappings = candidate_mappings(job)
        if not mappings:
            raise Skip(f"no enabled mapping for {job.event.name}")
        includes = ("category",) if job.kind == "expense" else ()
        record = fetch(job, job.kind, job.event.object_id, includes)
        related = related_of(job, record)
        job.store({job.kind: record, **{k: v for k, v in related.items() if v}})
        return write_issue(job, mappings, record, related)

    handle.__name__ = f"handle_{related_of.__name__.removeprefix('related_')}"
    return handle


def handle_client(job):
    """Clients become Jira user matches (reporter/assignee); an issue only when a mapping asks for one."""
    if job.action == "delete":
        raise Skip("client deleted in FreshBooks: nothing to sync")
    record = fetch(job, "client", job.event.object_id)
    job.store({"client": record})
    # A changed email may match someone else: forget our own cached match (never an operator's).
    JiraUserMatch.objects.filter(
        tenant=job.tenant, kind="client", freshbooks_id=job.event.object_id, note=AUTO_MATCH_NOTE
    ).delete()
    user = match_user(job, "client", (job.event.object_id, record.get("email")))
    job.notes.append(f"matched to Jira user {user}" if user else "no Jira user matches this client's email")
    mappings = candidate_mappings(job)
    if mappings:
        return write_issue(job, mappings, record, {})
    if user:
        return job.done()
    raise Skip("; ".join(job.notes))


# Worklogs ------------------------------------------------------------------------------------------------


def jira_started(value):
    """FreshBooks' "2023-08-09T19:56:50Z" → Jira's yyyy-MM-dd'T'HH:mm:ss.SSS+0000 (UTC); ValueError if unreadable."""
    return field_types.jira_datetime(value)


def worklog_body(job, entry):
    from connector.jira.adf import to_adf

    started = entry.get("started_at") or entry.get("created_at")
    if not started:
        raise Skip("the time entry has no start time")
    try:
        body = {
            "timeSpentSeconds": max(60, int(float(entry.get("duration") or 0))),  # Jira's minimum is 60
            "started": jira_started(started),
        }
    except (TypeError, ValueError) as exc:  # FreshBooks sent something we cannot read: fail readably
        raise FreshBooksError(
            f"time entry {entry.get('id')}: unreadable duration {entry.get('duration')!r} or start {started!r}"
        ) from exc
    note = fit_text((entry.get("note") or "").strip(), TEXT_MAX, job.notes, "worklog comment")
    if note:
        body["comment"] = to_adf(note) if job.jira.cloud else note
    return body


def worklog_issue(job, entry):
    """The Jira issue key for a time entry from the tenant's WorklogRules (in order), or None."""
    values = {
        WorklogRule.MatchKind.PROJECT: entry.get("project_id"),
        WorklogRule.MatchKind.CLIENT: entry.get("client_id"),
        WorklogRule.MatchKind.SERVICE: entry.get("service_id"),
    }
    for rule in WorklogRule.objects.filter(tenant=job.tenant, enabled=True).order_by("order", "id"):
        if rule.match_kind == WorklogRule.MatchKind.NOTE_KEY:
            found = ISSUE_KEY.search(entry.get("note") or "")
            if not found:
                continue
            if job.jira.get_issue(found.group()) is not None:
                return found.group()
            job.notes.append(f"{found.group()} (from the note) does not exist in Jira")
        elif (
            rule.issue_key
            and values.get(rule.match_kind) not in (None, "")
            and (str(values[rule.match_kind]) == rule.match_value.strip())
        ):
            return rule.issue_key.strip()
    return None


def worklog_link(job):
    return (
        Link.objects.filter(tenant=job.tenant, purpose=Link.Purpose.WORKLOG, object_id=job.event.object_id)
        .exclude(state__in=[Link.State.DELETED, Link.State.ROLLED_BACK])
        .first()
    )


def handle_time_entry(job):
    """time_entry.create → a worklog, .update → that worklog updated (created if missing), .delete → deleted."""
    link = worklog_link(job)
    if job.action == "delete":
        if link is None:
            raise Skip(f"no worklog is linked to time entry {job.event.object_id}")
        ledger.delete_worklog(client=job.jira, link=link, event=job.event)
        return job.done(
            link.jira_issue_key, f"worklog {link.jira_worklog_id} deleted from {link.jira_issue_key}"
        )
    entry = fetch(job, "time_entry", job.event.object_id)
    project = fetch_related(job, "project", entry.get("project_id"))
    job.store({"time_entry": entry, **({"project": project} if project else {})})
    if (entry.get("timer") or {}).get("is_running"):
        raise Skip("the timer is still running: the worklog is written when it stops (time_entry.update)")
    body = worklog_body(job, entry)
    if link is not None and link.state == Link.State.CREATED and job.action == "update":
        ledger.update_worklog(client=job.jira, link=link, body=body, event=job.event)
        return job.done(
            link.jira_issue_key, f"worklog {link.jira_worklog_id} on {link.jira_issue_key} updated"
        )
    issue_key = link.jira_issue_key if link is not None and link.jira_issue_key else worklog_issue(job, entry)
    if not issue_key:
        raise Skip("no matching issue")
    existed = link is not None
    link = ledger.ensure_worklog(
        client=job.jira, tenant=job.tenant, time_entry_id=job.event.object_id, issue_key=issue_key,
        body=body, event=job.event,
    )  # fmt: skip
    if link.state != Link.State.CREATED:  # deleted in Jira or rolled back: never re-created
        raise Skip(f"the worklog of this time entry was {link.get_state_display().lower()}: not re-created")
    if existed and job.action == "update":  # an in-doubt create was resolved: bring it up to date
        ledger.update_worklog(client=job.jira, link=link, body=body, event=job.event)
    return job.done(link.jira_issue_key, f"worklog {link.jira_worklog_id} on {link.jira_issue_key}")


HANDLERS = {
    "invoice": issue_handler(related_invoice),
    "bill": issue_handler(related_bill),
    "payment": issue_handler(related_payment),
    "expense": issue_handler(related_expense),
    "time_entry": handle_time_entry,
    "client": handle_client,
}

__all__ = ["HANDLERS", "Job", "Outcome", "Skip", "payment_kind", "jira_started", "worklog_issue"]
