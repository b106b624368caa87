"""Time entries: Jira worklogs (create, update, delete), on the issue a worklog rule picks; fetched with their
project. They live under the business, not the accounting account."""

from decimal import ROUND_HALF_UP, Decimal

from connector.kinds.base import FRESHBOOKS_WEB, Kind, text

DOCS = {
    "note": "The time entry's note.",
    "duration": "Duration in seconds.",
    "hours": "Duration in hours, two decimals.",
    "started_at": "When the work started (ISO 8601, UTC).",
    "project_title": "The FreshBooks project's title, empty when none.",
    "project": "The FreshBooks project record.",
    "client_id": "The FreshBooks client id.",
    "service_id": "The FreshBooks service id.",
    "time_entry": "The whole FreshBooks time entry record.",
}


def build(record, related):
    project = related.get("project") or {}
    duration = record.get("duration") or 0
    return {
        "note": text(record.get("note")),
        "duration": duration,
        "hours": str((Decimal(int(duration)) / 3600).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)),
        "started_at": text(record.get("started_at")),
        "project_title": text(project.get("title")),
        "project": project,
        "client_id": text(record.get("client_id")),
        "service_id": text(record.get("service_id")),
    }


def related(fetch, entry):
    return {"project": fetch("project", entry.get("project_id"))}


KIND = Kind(
    name="time_entry",
    scope="business",
    writes="worklog",
    build=build,
    docs=DOCS,
    related=related,
    link=FRESHBOOKS_WEB + "/time-tracking",
)
