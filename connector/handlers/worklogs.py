"""Time entries → Jira worklogs: create, update (created if missing) and delete, through the ledger.

The issue comes from the tenant's WorklogRules, tried in order: a Jira issue key in the entry's note (used only
if the issue exists), then rules matching the FreshBooks project, client or service id. A running timer is
skipped until the update that stops it. Jira wants `started` as yyyy-MM-dd'T'HH:mm:ss.SSS+0000 and at least
60 seconds (https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-worklogs/); the note becomes the comment, cut to Jira's 32,767 characters.
"""

from connector import ledger
from connector.errors import FreshBooksError
from connector.handlers.job import Skip, fetch_with_related
from connector.jira import fields as field_types
from connector.jira.keys import ISSUE_KEY_IN_TEXT
from connector.models import IssueMapping, WorklogRule
from connector.render import TEXT_MAX, fit_text

MAX_NOTE_KEYS = 5  # issue keys of one note looked up in Jira at most


def jira_started(value):
    """FreshBooks' "2023-08-09T19:56:50Z" → Jira's yyyy-MM-dd'T'HH:mm:ss.SSS+0000 (UTC); ValueError if unreadable."""
    return field_types.jira_datetime(value)


def worklog_body(job, entry):
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
        body["comment"] = job.jira.dialect.text(note)
    return body


def worklog_issue(job, entry):
    """The Jira issue key for a time entry from the tenant's WorklogRules (in order), or None."""
    values = {
        WorklogRule.MatchKind.PROJECT: entry.get("project_id"),
        WorklogRule.MatchKind.CLIENT: entry.get("client_id"),
        WorklogRule.MatchKind.SERVICE: entry.get("service_id"),
    }
    rules = list(WorklogRule.objects.filter(tenant=job.tenant, enabled=True).order_by("order", "id"))
    for rule in rules:
        if rule.match_kind == WorklogRule.MatchKind.NOTE_KEY:
            key = note_issue(job, entry.get("note") or "", mapped_projects(job.tenant, rules))
            if key:
                return key
        elif (
            rule.issue_key
            and values.get(rule.match_kind) not in (None, "")
            and (str(values[rule.match_kind]) == rule.match_value.strip())
        ):
            return rule.issue_key.strip()
    return None


def mapped_projects(tenant, rules):
    """The Jira projects the tenant writes to: its enabled mappings' and its worklog rules' issues' projects."""
    keys = IssueMapping.objects.filter(tenant=tenant, enabled=True).values_list("project_key", flat=True)
    projects = {key.strip().upper() for key in keys}
    projects |= {rule.issue_key.strip().upper().rsplit("-", 1)[0] for rule in rules if rule.issue_key.strip()}
    return projects


def note_issue(job, note, projects):
    """The first issue key in the note that is in one of `projects` and exists in Jira, else None.

    Whoever writes a FreshBooks time entry writes its note: a key outside the tenant's projects is ignored
    (never looked up), so a note cannot send worklogs to any issue the connector's Jira user can reach.
    """
    for number, found in enumerate(ISSUE_KEY_IN_TEXT.finditer(note)):
        if number == MAX_NOTE_KEYS:
            break
        key = found.group()
        if key.rsplit("-", 1)[0] not in projects:
            job.notes.append(f"{key} (from the note) is not in a project of this tenant: ignored")
        elif job.jira.get_issue(key) is not None:
            return key
        else:
            job.notes.append(f"{key} (from the note) does not exist in Jira")
    return None


def handle_time_entry(job):
    """time_entry.create → a worklog, .update → that worklog updated (created if missing), .delete → deleted."""
    link = ledger.worklog_link(job.tenant, job.event.object_id)
    if job.action == "delete":
        if link is None:
            raise Skip(f"no worklog is linked to time entry {job.event.object_id}")
        ledger.delete_worklog(client=job.jira, link=link, event=job.event)
        return job.done(
            link.jira_issue_key, f"worklog {link.jira_worklog_id} deleted from {link.jira_issue_key}"
        )
    entry, _ = fetch_with_related(job)
    if (entry.get("timer") or {}).get("is_running"):
        raise Skip("the timer is still running: the worklog is written when it stops (time_entry.update)")
    body = worklog_body(job, entry)
    if link is not None and ledger.is_created(link) and job.action == "update":
        ledger.update_worklog(client=job.jira, link=link, body=body, event=job.event)
        return job.done(
            link.jira_issue_key, f"worklog {link.jira_worklog_id} on {link.jira_issue_key} updated"
        )
    issue_key = link.jira_issue_key if link is not None and link.jira_issue_key else worklog_issue(job, entry)
    if not issue_key:
        raise Skip("no matching issue")
    existed = link is not None
    link = ledger.ensure_worklog(
        client=job.jira,
        tenant=job.tenant,
        time_entry_id=job.event.object_id,
        issue_key=issue_key,
        body=body,
        event=job.event,
    )
    if not ledger.is_created(link):  # deleted in Jira or rolled back: never re-created
        raise Skip(f"the worklog of this time entry was {link.get_state_display().lower()}: not re-created")
    if existed and job.action == "update":  # an in-doubt create was resolved: bring it up to date
        ledger.update_worklog(client=job.jira, link=link, body=body, event=job.event)
    return job.done(link.jira_issue_key, f"worklog {link.jira_worklog_id} on {link.jira_issue_key}")
