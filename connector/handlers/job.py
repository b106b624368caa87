"""What a handler works with: the Job (event, tenant, connections, API clients), its Outcome, and fetching.

A handler gets a Job, fetches what it needs from FreshBooks (`fetch`, `fetch_related`; soft-deleted records are
Skip, see `live`), stores it encrypted on
`event.record` (`Job.store`), and writes to Jira only through the ledger (connector.ledger). It returns an
Outcome or raises Skip (nothing to do); vendor failures raise connector.errors and become the event's status
in connector.tasks.
"""

from dataclasses import dataclass, field

from connector import repeats
from connector.errors import FreshBooksError
from connector.kinds import KINDS
from connector.kinds.base import ARCHIVED, DELETED, vis_state

# Related records named as the operator knows them (the keys of Kind.related's answer).
RELATED_LABELS = {"vendor": "bill vendor", "category": "expense category"}


@dataclass
class Outcome:
    status: str  # an audit.Event status: succeeded, skipped, failed or waiting (then wait_until, wait_reason)
    jira_key: str = ""
    detail: str = ""
    wait_until: object = None  # aware datetime or None (connector.waiting)
    wait_reason: str = ""


class Skip(Exception):
    """Nothing to do for this event (the message says why); the event is marked skipped."""


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
        """The kind's name, e.g. "invoice" (the event name's prefix)."""
        return self.event.name.split(".", 1)[0]

    @property
    def declared(self):
        """The connector.kinds.Kind of the event."""
        return KINDS[self.kind]

    @property
    def action(self):
        return self.event.name.split(".", 1)[1] if "." in self.event.name else ""

    def store(self, records):
        """Keep what was fetched, encrypted, on the event (visible in the admin); saved with the outcome by
        connector.tasks.finish, in the same UPDATE. Skip when the event repeats an earlier identical delivery
        and FreshBooks' record has not changed since (connector.repeats)."""
        self.event.record = records
        earlier = repeats.unchanged_since(self.event, records)
        if earlier is not None:
            raise Skip(f"nothing changed in FreshBooks since event #{earlier.pk} (the same delivery again)")

    def done(self, jira_key="", detail=""):
        return Outcome("succeeded", jira_key, "; ".join([detail, *self.notes]).strip("; "))


def live(job, name, record, object_id=None):
    """`record` unless FreshBooks soft-deleted it (Skip: nothing is written to Jira for it or for a record
    relying on it); an archived one is kept, with a note. `name`: a kind or a related record's name."""
    declared = KINDS.get(name)
    state = (declared.state if declared else vis_state)(record or {})
    label = RELATED_LABELS.get(name, name.replace("_", " "))
    object_id = object_id or (record or {}).get("id") or (record or {}).get(f"{name}id")
    if state == DELETED:
        raise Skip(f"{label} {object_id} was deleted in FreshBooks")
    if state == ARCHIVED:
        job.notes.append(f"{label} {object_id} is archived in FreshBooks")
    return record


def declared_includes(kind):
    """The `include[]` values a kind is fetched with (connector.kinds); () for other records."""
    return KINDS[kind].includes if kind in KINDS else ()


def fetch(job, kind, object_id, includes=None):
    """The record (with its kind's includes unless `includes` says otherwise), or Skip when FreshBooks no
    longer has it (404, deleted before we got to it) or has soft-deleted it (`Kind.state`)."""
    includes = declared_includes(kind) if includes is None else includes
    try:
        record = job.fb.get(kind, object_id, includes)
    except FreshBooksError as exc:
        if exc.status == 404:
            raise Skip(f"{kind.replace('_', ' ')} {object_id} no longer exists in FreshBooks") from exc
        raise
    return live(job, kind, record, object_id)


def fetch_related(job, kind, object_id, includes=None):
    """A related record, with the includes its kind declares (a payment's invoice comes with its lines); a
    missing one (404) is noted on the event, not fatal. None for an empty id."""
    if object_id in (None, "", 0, "0"):
        return None
    includes = declared_includes(kind) if includes is None else includes
    try:
        return job.fb.get(kind, object_id, includes)
    except FreshBooksError as exc:
        if exc.status == 404:
            job.notes.append(f"{kind} {object_id} not found in FreshBooks")
            return None
        raise


def fetch_with_related(job):
    """The event's record and its related records (as its kind declares), stored on the event.

    A soft-deleted related record, fetched or embedded (a payment's invoice, a record's client, a bill's
    vendor, an expense's category), is Skip: the handler relies on it, so nothing is written to Jira."""
    declared = job.declared
    record = fetch(job, job.kind, job.event.object_id, declared.includes)
    related = declared.related(lambda kind, object_id: fetch_related(job, kind, object_id), record)
    job.store({job.kind: record, **{k: v for k, v in related.items() if v}})  # kept even when skipped below
    for name, found in related.items():
        if isinstance(found, dict):
            live(job, name, found)
    return record, related
