"""Issue, worklog, search, property and user routes for FakeJira, behaving like Jira Cloud v3 (or v2 on a
FakeJira(deployment="server"): plain-text descriptions, /rest/api/2/search with startAt/total).

State (in ``jira.state``):
- ``projects`` (from FakeJira), ``custom_fields``: ids settable on the create screen.
- ``issues``: {key: {"id", "key", "fields", "properties": {key: value}, "hidden_searches"}}.
- ``worklogs``: {issue key: [{"id", "issueId", "started", "timeSpentSeconds", "comment", "properties": [...]}]}.
- ``users``: [{"accountId", "emailAddress", "displayName", "active", "name"}].
- ``search_lag``: newly created issues stay invisible to the next N searches (Jira's index lags writes).
- ``create_delay``: seconds to sleep inside POST /issue (widens races in concurrency tests).
- ``fail_next`` (handled by FakeJira.dispatch): see connector/sandbox/jira.py.
"""

import re
import time

from connector.sandbox.jira import (
    JIRA_DATETIME,
    TEXT_MAX,
    adf_nodes,
    errors,
    field_schema,
    java_length,
    resolve_issue_type,
    screen_fields,
)
from connector.sandbox.jira_quota import install_bulk_route
from connector.sandbox.jira_worklogs import install_worklog_routes
from connector.sandbox.jql import parse_jql
from connector.sandbox.server import Response


def install_issue_routes(jira):
    jira.state.setdefault("custom_fields", [])
    jira.state.update(search_lag=0, create_delay=0.0, issue_counters={})
    cloud = jira.deployment == "cloud"

    def next_key(project):
        with jira.lock:
            counters = jira.state["issue_counters"]
            counters[project] = counters.get(project, 0) + 1
            return f"{project}-{counters[project]}"

    def find(key_or_id):
        for issue in jira.state["issues"].values():
            if key_or_id in (issue["key"], issue["id"]):
                return issue
        return None

    def not_found(what="Issue"):
        return errors(404, [f"{what} does not exist or you do not have permission to see it."])

    def check_text(value, limit=None):
        """A rich-text value: ADF on Cloud v3, a plain string on Server v2 (Jira's messages and length limit)."""
        if cloud:
            if not (isinstance(value, dict) and value.get("type") == "doc" and value.get("version") == 1):
                return "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
            for node in adf_nodes(value):
                if node.get("type") == "text" and not node.get("text"):
                    return "INVALID_INPUT"  # Jira rejects empty text nodes
            text = "\n".join(node["text"] for node in adf_nodes(value) if node.get("type") == "text")
        elif not isinstance(value, str):
            return "Operation value must be a string"
        else:
            text = value
        if limit and java_length(text) > limit:
            return f"The entered text is too long. It exceeds the allowed limit of {limit:,} characters."
        return None

    def check_custom(schema, value):
        """Jira's answers to a custom field value of the wrong JSON type or length."""
        kind, custom = schema.get("type"), schema.get("custom", "")
        if custom.endswith(":textarea"):
            return check_text(value, TEXT_MAX)
        if kind == "string":
            if not isinstance(value, str):
                return "Operation value must be a string"
            if java_length(value) > 255:
                return "Text fields cannot be more than 255 characters."
        if kind == "number" and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return "Operation value must be a number"
        if kind == "date" and not (isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\d", value)):
            return "Date value is invalid. Expected format is yyyy-MM-dd."
        if kind == "datetime" and not (isinstance(value, str) and JIRA_DATETIME.match(value)):
            return "Invalid date format. Please enter the date in the format \"yyyy-MM-dd'T'HH:mm:ss.SSSZ\"."
        if kind == "option" and not (isinstance(value, dict) and ("value" in value or "id" in value)):
            return "Specify a valid 'id' or 'name' for " + schema.get("custom", "the field")
        return None

    def check_fields(fields, creating, project=None):
        problems = {}
        if creating:
            project = jira.state["projects"].get((fields.get("project") or {}).get("key", ""))
            if not project:
                return {"project": "Specify a valid project ID or key"}, None
            if resolve_issue_type(jira, project, fields.get("issuetype")) is None:
                problems["issuetype"] = "Specify a valid issue type"
            if not (fields.get("summary") or "").strip():
                problems["summary"] = "You must specify a summary of the issue."
        if project is not None:  # the project's create / edit screen
            shown = set(screen_fields(jira, project)) | {"project", "issuetype"}
            for name in fields:
                if name not in shown and not name.startswith("customfield_"):
                    problems[name] = (
                        f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
                    )
        if (
            "summary" in fields and len((fields["summary"] or "").encode("utf-16-le")) // 2 > 255
        ):  # Java chars
            problems["summary"] = "Summary can't exceed 255 characters."
        if "summary" in fields and "\n" in (fields["summary"] or ""):
            problems["summary"] = "Field 'summary' cannot contain newline characters."
        if fields.get("description") is not None:
            problem = check_text(fields["description"], TEXT_MAX)
            if problem:
                problems["description"] = problem
        for label in fields.get("labels") or []:
            if not isinstance(label, str) or re.search(r"\s", label):
                problems["labels"] = f"The label '{label}' can't contain spaces."
            elif len(label.encode("utf-16-le")) // 2 > 255:
                problems["labels"] = "The label must not exceed 255 characters."
        parent = (fields.get("parent") or {}).get("key")
        if parent and not find(parent):
            problems["parent"] = f"Could not find issue by id or key '{parent}'."
        hidden = set((project or {}).get("hidden") or [])
        for name in fields:
            if name.startswith("customfield_") and (
                name not in jira.state["custom_fields"] or name in hidden
            ):
                problems[name] = (
                    f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
                )
            elif name.startswith("customfield_"):
                problem = check_custom(field_schema(jira, name), fields[name])
                if problem:
                    problems[name] = problem
        for role in ("reporter", "assignee"):
            user = fields.get(role)
            if user:
                ident = user.get("accountId") if cloud else user.get("name")
                if not any(ident in (u.get("accountId"), u.get("name")) for u in jira.state["users"]):
                    problems[role] = f"Specify a valid {'accountId' if cloud else 'user name'} for {role}."
        return problems, project

    @jira.api("POST", "issue")
    def create_issue(request):
        return create_one(request.json() or {}, request.path)

    def create_one(body, path):
        """One issue from a create body (also each element of POST issue/bulk, connector.sandbox.jira_quota)."""
        fields = body.get("fields") or {}
        problems, project = check_fields(fields, creating=True)
        if problems:
            return errors(400, **problems)
        if jira.state["create_delay"]:
            time.sleep(jira.state["create_delay"])
        issue_id, key = jira.new_id(), next_key(project["key"])
        fields = {**fields, "issuetype": resolve_issue_type(jira, project, fields.get("issuetype"))}
        with jira.lock:
            jira.state["issues"][key] = {
                "id": issue_id,
                "key": key,
                "fields": fields,
                "properties": {p["key"]: p.get("value") for p in body.get("properties") or []},
                "hidden_searches": jira.state["search_lag"],
                "created": time.time(),
            }
        return Response(201, {"id": issue_id, "key": key, "self": f"{jira.url}{path}/{issue_id}"})

    jira.create_one = create_one
    install_bulk_route(jira)

    def subtasks(issue):
        """The issue's sub-tasks as Jira lists them in ``fields.subtasks``."""
        return [
            {"id": other["id"], "key": other["key"], "fields": {"summary": other["fields"].get("summary")}}
            for other in jira.state["issues"].values()
            if (other["fields"].get("parent") or {}).get("key") in (issue["key"], issue["id"])
            and (other["fields"].get("issuetype") or {}).get("subtask")
        ]

    def issue_json(issue, request):
        wanted = [f for f in (request.arg("fields") or "*all").split(",") if f]
        fields = {**issue["fields"], "subtasks": subtasks(issue)}
        if "*all" not in wanted and "*navigable" not in wanted:
            fields = {name: value for name, value in fields.items() if name in wanted}
        found = {
            "id": issue["id"],
            "key": issue["key"],
            "self": f"{jira.url}/rest/api/x/issue/{issue['id']}",
            "fields": fields,
        }
        names = [p for p in (request.arg("properties") or "").split(",") if p]
        if names:
            found["properties"] = {n: issue["properties"][n] for n in names if n in issue["properties"]}
        return found

    @jira.api("GET", r"issue/(?P<key>[^/]+)")
    def get_issue(request):
        issue = find(request.match["key"])
        return issue_json(issue, request) if issue else not_found()

    @jira.api("PUT", r"issue/(?P<key>[^/]+)")
    def edit_issue(request):
        issue = find(request.match["key"])
        if not issue:
            return not_found()
        fields = (request.json() or {}).get("fields") or {}
        for fixed in ("project", "issuetype"):
            if fixed in fields:
                return errors(400, **{fixed: "Field cannot be set on an edit screen."})
        project = jira.state["projects"].get((issue["fields"].get("project") or {}).get("key", ""))
        problems, _ = check_fields(fields, creating=False, project=project)
        if problems:
            return errors(400, **problems)
        with jira.lock:
            issue["fields"].update(fields)
        return Response(204)

    @jira.api("DELETE", r"issue/(?P<key>[^/]+)")
    def delete_issue(request):
        issue = find(request.match["key"])
        if not issue:
            return not_found()
        children = subtasks(issue)
        if children and request.arg("deleteSubtasks") != "true":
            message = (
                f"The issue '{issue['key']}' has subtasks. You must specify the 'deleteSubtasks' parameter "
                "to delete this issue and all its subtasks."
            )
            return errors(400, [message])
        with jira.lock:
            for key in [child["key"] for child in children] + [issue["key"]]:
                del jira.state["issues"][key]
                jira.state["worklogs"].pop(key, None)
        return Response(204)

    @jira.api("GET", r"issue/(?P<key>[^/]+)/properties/(?P<prop>[^/]+)")
    def get_property(request):
        issue = find(request.match["key"])
        if not issue:
            return not_found()
        if request.match["prop"] not in issue["properties"]:
            return errors(404, [f"The property with key '{request.match['prop']}' does not exist."])
        return {"key": request.match["prop"], "value": issue["properties"][request.match["prop"]]}

    # Search
    def matches(issue, clauses):
        for field, values in clauses:
            fields = issue["fields"]
            if field == "labels":
                ok = bool(values & set(fields.get("labels") or []))
            elif field == "project":
                ok = (fields.get("project") or {}).get("key") in values
            elif field in ("key", "issuekey", "id"):
                ok = bool(values & {issue["key"], issue["id"]})
            else:
                raise ValueError(f"Field '{field}' is not supported by the fake.")
            if not ok:
                return False
        return True

    def search(jql, request):
        try:
            clauses = parse_jql(jql or "")
        except ValueError as exc:
            return None, errors(400, [str(exc)])
        with jira.lock:
            found = []
            for issue in sorted(jira.state["issues"].values(), key=lambda i: int(i["id"])):
                if issue["hidden_searches"] > 0:  # not indexed yet
                    issue["hidden_searches"] -= 1
                    continue
                try:
                    if matches(issue, clauses):
                        found.append(issue)
                except ValueError as exc:
                    return None, errors(400, [str(exc)])
        return [issue_json(issue, request) for issue in found], None

    def search_jql(request, params):
        fields_arg = params.get("fields")
        if isinstance(fields_arg, list):
            fields_arg = ",".join(fields_arg)
        request.query["fields"] = [fields_arg or "id"]  # Jira's default: ids only
        found, problem = search(params.get("jql"), request)
        if problem:
            return problem
        if (fields_arg or "id") == "id":
            found = [{"id": issue["id"]} for issue in found]
        start = int(params.get("nextPageToken") or 0)
        size = int(params.get("maxResults") or 50)
        page = found[start : start + size]
        body = {"issues": page, "isLast": start + size >= len(found)}
        if not body["isLast"]:
            body["nextPageToken"] = str(start + size)
        return body

    if cloud:

        @jira.api("GET", "search/jql")
        def search_jql_get(request):
            return search_jql(request, {k: request.arg(k) for k in request.query})

        @jira.api("POST", "search/jql")
        def search_jql_post(request):
            return search_jql(request, request.json() or {})

        @jira.api("GET", "search")
        @jira.api("POST", "search")
        def removed_search(request):
            return errors(
                410,
                [
                    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
                    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
                ],
            )

    else:

        @jira.api("GET", "search")
        def search_v2(request):
            found, problem = search(request.arg("jql"), request)
            if problem:
                return problem
            start, size = int(request.arg("startAt") or 0), int(request.arg("maxResults") or 50)
            page = found[start : start + size]
            return {"startAt": start, "maxResults": size, "total": len(found), "issues": page}

    install_worklog_routes(jira, find, not_found, check_text)
    return jira
