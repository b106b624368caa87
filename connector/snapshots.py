"""What the connector overwrote in Jira, kept so that a rollback can put it back.

Before the ledger changes an issue or worklog it keeps (on the write's audit.Attempt, encrypted in
`Attempt.previous`) the values it is about to overwrite, and right after the write the values Jira then
holds:
    {"kind": "issue", "key": "FIN-1", "before": {field: value}, "after": {field: value}}
    {"kind": "worklog", "key": "FIN-7", "worklog_id": "10001", "before": {…}, "after": {…}}
    {"kind": "worklog_delete", "key": "FIN-7", "worklog_id": "10001", "time_entry": "123", "before": {…}}
Values are Jira's GET representation (`GET /issue/{key}?fields=…`, `GET /issue/{key}/worklog/{id}`); a
rollback compares "after" with what Jira holds now (a difference means someone changed it since) and
writes "before" back in Jira's PUT representation (`writable`).
"""

from audit.models import Attempt

WORKLOG_FIELDS = ("started", "timeSpentSeconds", "comment")


def issue_fields(client, key, names):
    """{name: value} of the issue's fields `names` (None for a field not set); None when the issue is gone."""
    issue = client.get_issue(key, fields=tuple(names))
    if issue is None:
        return None
    fields = issue.get("fields") or {}
    return {name: fields.get(name) for name in names}


def worklog_fields(client, key, worklog_id):
    """The worklog's started, timeSpentSeconds and comment; None when the worklog is gone."""
    worklog = client.get_worklog(key, worklog_id)
    if worklog is None:
        return None
    return {name: worklog[name] for name in WORKLOG_FIELDS if worklog.get(name) is not None}


def keep(client, previous, after=None):
    """Store `previous` on the attempt of the client's write, its last call (with `after()` taken now)."""
    call = client.last_call
    attempt_id = call.stored.get("attempt") if call is not None else None
    if client.event is None or attempt_id is None:
        return
    if after is not None:
        previous = {**previous, "after": after()}
    Attempt.objects.filter(pk=attempt_id).update(previous=previous)


def writable(value):
    """A field value as Jira reads it → as Jira's PUT accepts it: users by accountId (Server: name),
    issues (parent) by key, options by id; lists item by item; anything else unchanged."""
    if isinstance(value, list):
        return [writable(item) for item in value]
    if not isinstance(value, dict) or value.get("type") == "doc":
        return value
    for ident in ("accountId", "name", "key"):
        if value.get(ident):
            return {ident: value[ident]}
    if value.get("id") is not None:
        return {"id": value["id"]}
    return value


def restorable_issue_fields(before):
    fields = {name: writable(value) for name, value in before.items()}
    if "labels" in fields and fields["labels"] is None:
        fields["labels"] = []
    return fields


def differences(after, now):
    """[(field, what we wrote, what Jira holds now)] for the fields changed since our write."""
    if now is None:
        return [("(all)", "present", "deleted in Jira")]
    return [(name, value, now.get(name)) for name, value in after.items() if now.get(name) != value]
