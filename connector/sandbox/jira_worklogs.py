"""Worklog and user-search routes for FakeJira (installed by connector/sandbox/jira_issues.py, which passes its
issue lookups): worklogs with their properties, as Jira Cloud v3 (ADF comments) or Server v2 (plain text)."""

from datetime import datetime

from connector.sandbox.jira import JIRA_DATETIME, TEXT_MAX, errors
from connector.sandbox.server import Response


def install_worklog_routes(jira, find, not_found, check_text):
    """`find(key or id)` -> the issue or None; `not_found(what)` -> Jira's 404; `check_text(value, limit)` -> the
    problem with a rich-text value or None (connector/sandbox/jira_issues.py)."""
    cloud = jira.deployment == "cloud"

    # Worklogs
    def worklog_json(issue, worklog, request):
        found = {key: value for key, value in worklog.items() if key != "properties"}
        found["self"] = f"{jira.url}/rest/api/x/issue/{issue['id']}/worklog/{worklog['id']}"
        if "properties" in (request.arg("expand") or "").split(","):
            found["properties"] = worklog["properties"]
        return found

    def check_worklog(body, creating):
        problems = {}
        if creating and not body.get("started"):
            problems["started"] = "Started date is required."
        if body.get("started") and not JIRA_DATETIME.match(body["started"]):
            problems["started"] = (
                "Invalid date format. Please enter the date in the format \"yyyy-MM-dd'T'HH:mm:ss.SSSZ\"."
            )
        seconds = body.get("timeSpentSeconds")
        if creating and seconds is None and not body.get("timeSpent"):
            problems["timeLogged"] = "You must indicate the time spent working."
        if seconds is not None and seconds < 60:
            problems["timeLogged"] = "Time Spent must be at least one minute."
        if body.get("comment") is not None:
            problem = check_text(body["comment"], TEXT_MAX)
            if problem:
                problems["comment"] = problem
        return problems

    @jira.api("POST", r"issue/(?P<key>[^/]+)/worklog")
    def add_worklog(request):
        issue = find(request.match["key"])
        if not issue:
            return not_found()
        body = request.json() or {}
        problems = check_worklog(body, creating=True)
        if problems:
            return errors(400, **problems)
        worklog = {
            "id": jira.new_id(),
            "issueId": issue["id"],
            "started": body["started"],
            "timeSpentSeconds": body.get("timeSpentSeconds"),
            "comment": body.get("comment"),
            "created": datetime.now().strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "properties": list(body.get("properties") or []),
        }
        with jira.lock:
            jira.state["worklogs"].setdefault(issue["key"], []).append(worklog)
        return Response(201, worklog_json(issue, worklog, request))

    @jira.api("GET", r"issue/(?P<key>[^/]+)/worklog")
    def list_worklogs(request):
        issue = find(request.match["key"])
        if not issue:
            return not_found()
        worklogs = jira.state["worklogs"].get(issue["key"], [])
        start, size = int(request.arg("startAt") or 0), int(request.arg("maxResults") or 5000)
        page = [worklog_json(issue, w, request) for w in worklogs[start : start + size]]
        return {"startAt": start, "maxResults": size, "total": len(worklogs), "worklogs": page}

    def find_worklog(request):
        issue = find(request.match["key"])
        for worklog in jira.state["worklogs"].get(issue["key"] if issue else "", []):
            if worklog["id"] == request.match["id"]:
                return issue, worklog
        return issue, None

    @jira.api("GET", r"issue/(?P<key>[^/]+)/worklog/(?P<id>\d+)")
    def get_worklog(request):
        issue, worklog = find_worklog(request)
        return worklog_json(issue, worklog, request) if worklog else not_found("Worklog")

    @jira.api("PUT", r"issue/(?P<key>[^/]+)/worklog/(?P<id>\d+)")
    def update_worklog(request):
        issue, worklog = find_worklog(request)
        if not worklog:
            return not_found("Worklog")
        body = request.json() or {}
        problems = check_worklog(body, creating=False)
        if problems:
            return errors(400, **problems)
        with jira.lock:
            for name in ("started", "timeSpentSeconds", "comment"):
                if name in body:
                    worklog[name] = body[name]
        return worklog_json(issue, worklog, request)

    @jira.api("DELETE", r"issue/(?P<key>[^/]+)/worklog/(?P<id>\d+)")
    def delete_worklog(request):
        issue, worklog = find_worklog(request)
        if not worklog:
            return not_found("Worklog")
        with jira.lock:
            jira.state["worklogs"][issue["key"]].remove(worklog)
        return Response(204)

    # Users
    @jira.api("GET", "user/search")
    def user_search(request):
        query = (request.arg("query") or request.arg("username") or "").lower()
        if not query:
            return errors(
                400, ["One of the query parameters 'query', 'accountId' or 'property' is required."]
            )
        found = [
            u
            for u in jira.state["users"]
            if query in (u.get("emailAddress") or "").lower() or query in (u.get("displayName") or "").lower()
        ]
        return [
            {
                "accountId": u.get("accountId"),
                "displayName": u.get("displayName"),
                "active": u.get("active", True),
                **(
                    {"emailAddress": u["emailAddress"]}
                    if u.get("emailAddress") and not u.get("hide_email")
                    else {}
                ),
                **({} if cloud else {"name": u.get("name"), "key": u.get("name")}),
            }
            for u in found
        ]
