"""One small handler per kind of Jira write, chosen through HANDLERS (like Zulip's webhook integrations).

Each FreshBooks kind declares what it writes (connector.kinds: `Kind.writes`); HANDLERS maps every declared
kind to the handler for that: issues (connector.handlers.issues), Jira user matches for clients (same module)
and worklogs (connector.handlers.worklogs). A handler gets a Job (connector.handlers.job) and returns an
Outcome or raises Skip; vendor failures raise connector.errors.
"""

from connector.handlers.issues import handle_client, handle_issue
from connector.handlers.job import Job, Outcome, Skip
from connector.handlers.worklogs import handle_time_entry, jira_started, worklog_issue
from connector.kinds import KINDS

WRITERS = {"issue": handle_issue, "user": handle_client, "worklog": handle_time_entry}
HANDLERS = {name: WRITERS[kind.writes] for name, kind in KINDS.items()}

__all__ = ["HANDLERS", "WRITERS", "Job", "Outcome", "Skip", "jira_started", "worklog_issue"]
