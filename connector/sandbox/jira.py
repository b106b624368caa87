"""A fake Jira Cloud (or Server) on loopback: the tests' Jira and the sandbox's. When `REQUEST_CHECK` is set (the
tests set it to tests/jira_spec.py's `validate`, which checks against the official Jira Cloud OpenAPI spec), every
Cloud request it receives is checked; a non-conforming request is answered 400 and recorded in
`server.spec_errors`, which the `fake_jira` fixture turns into a test failure.

State lives in `server.state`: projects, issues, worklogs, users. Routes are installed by functions so
other modules can add theirs (`install_core_routes(server)` here; issues, worklogs, webhooks elsewhere).
"""

import base64
import re
import time

from connector.sandbox.server import FakeServer, Response

# callable(request, path) -> None when the request conforms, else the error text; None: requests are not checked.
REQUEST_CHECK = None
EMAIL, API_TOKEN = "ops@acme.test", "jira-api-token"
JIRA_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}\Z")


def errors(status=400, messages=(), **field_errors):
    """Jira's error answer: {"errorMessages": [...], "errors": {field: message}}."""
    return Response(status, {"errorMessages": list(messages), "errors": field_errors})


class FakeJira(FakeServer):
    """A Jira site. `cloud_id` set → it also answers on /ex/jira/{cloud_id}/... like api.atlassian.com (and on
    the cloud ids in ``state["cloud_ids"]``: the other sites the gateway serves; not those in
    ``state["unreachable"]``)."""

    open_paths = None  # a compiled regex: matching paths need no credentials (the sandbox's own pages)

    def __init__(
        self, deployment="cloud", cloud_id="", email=EMAIL, api_token=API_TOKEN, bearer_tokens=(), port=0
    ):
        super().__init__("fake-jira", port=port)
        self.deployment = deployment
        self.cloud_id = cloud_id
        self.spec_errors = []
        self.credentials = {"basic": (email, api_token), "bearer": set(bearer_tokens)}
        self.state.update(
            projects={
                "FIN": {"id": "10000", "key": "FIN", "name": "Finance", "issueTypes": ["Task", "Bug", "Epic"]}
            },
            issue_types=dict(ISSUE_TYPES),
            issues={},
            worklogs={},
            users=[],
            next_id=10001,
        )

    def new_id(self):
        with self.lock:
            self.state["next_id"] += 1
            return str(self.state["next_id"])

    def dispatch(self, request):
        gateway = re.match(r"/ex/jira/([^/]+)(/.*)", request.path)
        served = {self.cloud_id, *self.state.get("cloud_ids", ())} - {"", *self.state.get("unreachable", ())}
        if gateway and gateway.group(1) in served:
            request.path = gateway.group(2)
        if self.open_paths and self.open_paths.match(request.path):
            return super().dispatch(request)
        odd = misbehaviour(self, request)
        if odd is not None:
            self.record(request)
            return odd
        if not self.authorized(request):
            self.record(request)
            return self.refuse(request)
        if REQUEST_CHECK and self.deployment == "cloud" and request.path.startswith("/rest/api/3/"):
            error = REQUEST_CHECK(request, request.path)
            if error:
                with self.lock:
                    self.spec_errors.append(error)
                self.record(request)
                return Response(400, {"errorMessages": [f"fake-jira spec violation: {error}"]})
        failure = self.take_failure(request)
        if failure is None:
            return super().dispatch(request)
        applied = super().dispatch(request) if failure.get("apply") else None
        if not failure.get("apply"):
            self.record(request)
        status = failure["status"]
        headers = dict(failure.get("headers") or ({"Retry-After": "1"} if status == 429 else {}))
        body = failure.get("body") or {
            "errorMessages": [f"fake-jira injected failure {status}"],
            "errors": {},
        }
        if applied is not None:
            self.state.setdefault("applied_failures", []).append(applied)
        return Response(status, body, headers)

    def take_failure(self, request):
        """Pop the first `state["fail_next"]` entry matching the request, as a dict, or None.

        Entries: (method, path_regex, status[, apply]) or {"method", "path", "status", "apply", "headers",
        "body"}. apply=True: the request is carried out but answered with the failure (the ambiguous case).
        """
        with self.lock:
            for index, entry in enumerate(self.state.get("fail_next") or []):
                if not isinstance(entry, dict):
                    entry = dict(zip(("method", "path", "status", "apply"), entry, strict=False))
                if entry["method"] == request.method and re.search(entry["path"], request.path):
                    del self.state["fail_next"][index]
                    return entry
        return None

    def authorized(self, request):
        header = request.headers.get("authorization", "")
        expires = self.state.get("token_expires_at")  # epoch seconds: API tokens and PATs expire then
        if expires is not None and time.time() >= expires and not header.startswith("Bearer ey"):
            return False
        if header.startswith("Bearer "):
            return header[7:] in self.credentials["bearer"]
        if header.startswith("Basic ") and not self.state.get("pat_only"):
            email, _, token = base64.b64decode(header[6:]).decode().partition(":")
            return (email, token) == self.credentials["basic"]
        return False

    def refuse(self, request):
        """401 like Jira; on Server/DC a Basic sign-in failed `captcha_after` times is locked behind a CAPTCHA
        (403 with X-Authentication-Denied-Reason and X-Seraph-LoginReason: AUTHENTICATION_DENIED)."""
        if request.headers.get("authorization", "").startswith("Basic ") and self.deployment != "cloud":
            with self.lock:
                self.state["failed_logins"] = self.state.get("failed_logins", 0) + 1
                locked = self.state.get("captcha_after") is not None and (
                    self.state["failed_logins"] > self.state["captcha_after"]
                )
            if locked:
                return Response(
                    403,
                    "<html><body>CAPTCHA required</body></html>",
                    {
                        "X-Authentication-Denied-Reason": f"CAPTCHA_CHALLENGE; login-url={self.url}/login.jsp",
                        "X-Seraph-LoginReason": "AUTHENTICATION_DENIED",
                    },
                )
            return Response(
                401,
                {"errorMessages": ["You are not authenticated."]},
                {"X-Seraph-LoginReason": "AUTHENTICATED_FAILED"},
            )
        return Response(401, {"errorMessages": ["You are not authenticated."]})

    def api(self, method, path):
        """Route a REST API path given relative to /rest/api/{2|3}/."""
        version = "3" if self.deployment == "cloud" else "2"
        return self.route(method, f"/rest/api/{version}/{path}")


LOGIN_PAGE = (
    '<!DOCTYPE html><html><head><title>Log in - Jira</title></head><body><form action="/login.jsp" '
    'method="post"><input name="os_username"><input name="os_password" type="password"></form></body></html>'
)


def misbehaviour(jira, request):
    """What Jira (or the proxy in front of it) answers instead of the API, when switched on in its state:

    - ``moved_to``: a URL the site moved to (e.g. ``<site>/jira``): every REST call answers 301 with Location
      there (a Data Center moved under a context path, or a renamed site);
    - ``login_page``: True: every REST call answers 200 text/html with a sign-in page (Data Center behind SSO).
    Expiring tokens (``token_expires_at``), PAT-only Data Center (``pat_only``) and CAPTCHA lock-outs
    (``captcha_after``) are credentials rules: see FakeJira.authorized and FakeJira.refuse."""
    if not request.path.startswith("/rest/"):
        return None
    moved_to = jira.state.get("moved_to")
    if moved_to:
        query = "&".join(f"{k}={v}" for k, vs in request.query.items() for v in vs)
        return Response(
            301, "", {"Location": moved_to.rstrip("/") + request.path + (f"?{query}" if query else "")}
        )
    if jira.state.get("login_page"):
        return Response(200, LOGIN_PAGE)
    return None


# What an operator can make the sandbox's Jira do (its page's "Jira misbehaves" form): name → label.
BEHAVIOURS = {
    "": "answers normally",
    "moved": "moved under /jira (every REST call answers 301)",
    "login_page": "behind SSO (every REST call answers 200 with a sign-in page)",
    "token_expired": "the API token has expired (401: the site turns Needs reconnect)",
}


def behaviour(jira):
    """The behaviour switched on in `jira.state` (a key of BEHAVIOURS)."""
    if jira.state.get("moved_to"):
        return "moved"
    if jira.state.get("login_page"):
        return "login_page"
    return "token_expired" if jira.state.get("token_expires_at") is not None else ""


def set_behaviour(jira, name):
    """Switch the fake to one of BEHAVIOURS (the others off)."""
    with jira.lock:
        jira.state["moved_to"] = f"{jira.url}/jira" if name == "moved" else None
        jira.state["login_page"] = name == "login_page"
        jira.state["token_expires_at"] = 0 if name == "token_expired" else None


TEXTFIELD = {"type": "string", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textfield"}
# The site's shared (company-managed) issue types, id → name. A project lists the names it uses in
# "issueTypes"; a team-managed project has its own types instead ("ownTypes": {id: name}), so its "Task" has
# another id than the shared "Task", and a create naming "Task" resolves to the shared one, which Jira refuses.
# "hidden": field ids not on the project's create (and edit) screen, e.g. ["labels"].
ISSUE_TYPES = {"10001": "Task", "10002": "Bug", "10000": "Epic", "10003": "Sub-task"}
SUBTASK_TYPES = {"Sub-task"}


def project_types(jira, project):
    """The issue types creatable in a project: [{"id", "name", "subtask"}]."""
    own = project.get("ownTypes")
    if own:
        pairs = list(own.items())
    else:
        by_name = {name: type_id for type_id, name in jira.state.get("issue_types", ISSUE_TYPES).items()}
        pairs = [(by_name.get(name, name), name) for name in project["issueTypes"]]
    return [{"id": str(type_id), "name": name, "subtask": name in SUBTASK_TYPES} for type_id, name in pairs]


def resolve_issue_type(jira, project, value):
    """The {"id", "name"} a create's ``issuetype`` names in `project`, or None (Jira: "Specify a valid issue
    type"). By id: one of the project's types. By name: the site's shared type of that name, as Jira resolves
    names, so a team-managed project's own "Task" cannot be named."""
    value = value if isinstance(value, dict) else {}
    types = project_types(jira, project)
    if value.get("id"):
        return next((t for t in types if t["id"] == str(value["id"])), None)
    shared = {name: type_id for type_id, name in jira.state.get("issue_types", ISSUE_TYPES).items()}
    type_id = shared.get(value.get("name"))
    return next((t for t in types if t["id"] == type_id), None)


def screen_fields(jira, project):
    """The field ids on a project's create and edit screens."""
    hidden = set(project.get("hidden") or [])
    return [f for f in SYSTEM_FIELDS if f not in hidden] + [
        f for f in jira.state.get("custom_fields", []) if f not in hidden
    ]


SYSTEM_FIELDS = ("summary", "description", "labels", "parent", "reporter", "assignee")


def field_schema(jira, field_id):
    """A custom field's schema: ``state["field_schemas"][id]``, else a single-line text field."""
    schema = dict((jira.state.get("field_schemas") or {}).get(field_id) or TEXTFIELD)
    schema.setdefault("customId", int(field_id.rsplit("_", 1)[-1]))
    return schema


def install_core_routes(jira):
    @jira.api("GET", "serverInfo")
    def server_info(request):
        return {
            "baseUrl": jira.url,
            "deploymentType": "Cloud" if jira.deployment == "cloud" else "Server",
            "version": "1001.0.0" if jira.deployment == "cloud" else "9.12.0",
            "serverTitle": "Fake Jira",
        }

    @jira.api("GET", "myself")
    def myself(request):
        return {
            "accountId": "5b10a2844c20165700ede21g",
            "emailAddress": jira.credentials["basic"][0],
            "displayName": "Ops Bot",
            "active": True,
        }

    def find_project(key):
        return jira.state["projects"].get(key)

    @jira.api("GET", r"project/(?P<key>[^/]+)")
    def project(request):
        found = find_project(request.match["key"])
        if not found:
            return Response(
                404, {"errorMessages": [f"No project could be found with key '{request.match['key']}'."]}
            )
        return {"id": found["id"], "key": found["key"], "name": found["name"]}

    @jira.api("GET", r"issue/createmeta/(?P<key>[^/]+)/issuetypes")
    def createmeta_issuetypes(request):
        found = find_project(request.match["key"])
        if not found:
            return Response(404, {"errorMessages": ["Project not found."]})
        types = project_types(jira, found)
        return {"issueTypes": types, "maxResults": 200, "startAt": 0, "total": len(types)}

    def all_fields(project=None):
        fields = [
            {
                "fieldId": "summary",
                "key": "summary",
                "name": "Summary",
                "required": True,
                "schema": {"type": "string", "system": "summary"},
            },
            {
                "fieldId": "description",
                "key": "description",
                "name": "Description",
                "required": False,
                "schema": {"type": "string", "system": "description"},
            },
            {
                "fieldId": "labels",
                "key": "labels",
                "name": "Labels",
                "required": False,
                "schema": {"type": "array", "items": "string", "system": "labels"},
            },
            {
                "fieldId": "parent",
                "key": "parent",
                "name": "Parent",
                "required": False,
                "schema": {"type": "issuelink", "system": "parent"},
            },
            {
                "fieldId": "reporter",
                "key": "reporter",
                "name": "Reporter",
                "required": False,
                "schema": {"type": "user", "system": "reporter"},
            },
            {
                "fieldId": "assignee",
                "key": "assignee",
                "name": "Assignee",
                "required": False,
                "schema": {"type": "user", "system": "assignee"},
            },
        ]
        fields += [
            {"fieldId": fid, "key": fid, "name": fid, "required": False, "schema": field_schema(jira, fid)}
            for fid in jira.state.get("custom_fields", [])
        ]
        if project is not None:
            shown = set(screen_fields(jira, project))
            fields = [f for f in fields if f["fieldId"] in shown]
        return fields

    @jira.api("GET", r"issue/createmeta/(?P<key>[^/]+)/issuetypes/(?P<type_id>\d+)")
    def createmeta_fields(request):
        found = find_project(request.match["key"])
        if not found or request.match["type_id"] not in {t["id"] for t in project_types(jira, found)}:
            return Response(404, {"errorMessages": ["Issue type not found for this project."]})
        fields = all_fields(found)
        return {"fields": fields, "maxResults": 200, "startAt": 0, "total": len(fields)}

    @jira.api("GET", "field")
    def field_list(request):
        return [
            {
                "id": f["fieldId"],
                "key": f["key"],
                "name": f["name"],
                "custom": f["fieldId"].startswith("customfield_"),
                "schema": f["schema"],
            }
            for f in all_fields()
        ]

    return jira


TEXT_MAX = 32767  # description, worklog comment and multi-line text fields, in Java chars


def java_length(text):
    return len(text.encode("utf-16-le")) // 2


def adf_nodes(node):
    """Every node of an ADF document, depth first."""
    yield node
    for child in node.get("content") or []:
        if isinstance(child, dict):
            yield from adf_nodes(child)
