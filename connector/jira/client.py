"""A thin Jira REST client: Cloud v3 or Server/Data Center v2 (connector.jira.dialect), Basic (email + API
token) or OAuth 2.0.

Jira's rate limits are met as connector.jira.quota says (consulted before each request and on each answer: a
429 is waited out within the call's budget, or the event waits); idempotent calls are retried on 5xx as
connector.retry says; a POST is never re-sent after a 5xx here, because Jira has no idempotency key: the
caller's ledger decides (see connector.ledger). A 429 means Jira did not act on the request.
Failures raise connector.errors.JiraError (transient / ambiguous set from the answer).
"""

import time

import requests
from requests.auth import HTTPBasicAuth

from connector import http, retry
from connector.errors import JiraError
from connector.jira import quota
from connector.jira.dialect import dialect_for
from tenants import tokens

MYSELF = "myself"
SERVER_INFO = "serverInfo"
PROJECT = "project/{key}"
CREATEMETA_ISSUETYPES = "issue/createmeta/{project}/issuetypes"
CREATEMETA_FIELDS = "issue/createmeta/{project}/issuetypes/{issuetype_id}"
ISSUES = "issue"
ISSUES_BULK = "issue/bulk"
ISSUE = "issue/{key}"
ISSUE_PROPERTY = "issue/{key}/properties/{property}"
WORKLOGS = "issue/{key}/worklog"
WORKLOG = "issue/{key}/worklog/{worklog_id}"
USER_SEARCH = "user/search"

__all__ = ["JiraClient", "JiraError", "error_message"]


def error_message(response):
    """Jira's errorMessages and per-field errors, readable in one line; "HTTP <status>" when the answer is not
    Jira's error shape. Never the raw answer: it is shown to users (connection checks, webhook status), and a
    site URL pointed at some other server must not reveal what that server says (the Attempt keeps it,
    encrypted, for users who may see it)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}"
    parts = [str(m) for m in body.get("errorMessages") or [] if isinstance(m, str)]
    errors = body.get("errors")
    parts += [
        f"{field}: {message}" for field, message in (errors if isinstance(errors, dict) else {}).items()
    ]
    if isinstance(body.get("message"), str):
        parts.append(body["message"])
    return ("; ".join(parts) or f"HTTP {response.status_code}")[:500]


class JiraClient:
    def __init__(self, site, event=None, actor="worker", sleep=time.sleep, bulk=None):
        self.site = site
        self.event = event
        self.actor = actor
        self.sleep = sleep
        # Bulk work (reconcile, backfill) yields to live events when Jira's quota runs low (connector.jira.quota).
        self.bulk = bulk if bulk is not None else getattr(event, "source", "") == "reconcile"

    @property
    def dialect(self):
        """Cloud or Server / Data Center (connector.jira.dialect)."""
        return dialect_for(self.site)

    def url(self, path):
        if path.startswith("/"):  # a path outside /rest/api/N/, e.g. /rest/webhooks/1.0/webhook
            return self.site.api_base + path
        return f"{self.site.api_base}/rest/api/{self.dialect.api_version}/{path}"

    def _auth(self, token=None):
        if self.site.auth_method == self.site.AuthMethod.OAUTH2:
            return {"headers": {"Authorization": f"Bearer {token or tokens.access_token(self.site)}"}}
        return {"auth": HTTPBasicAuth(self.site.email, self.site.api_token)}

    def _backoff(self, attempt, waited, response=None):
        """Sleep before the next try (connector.retry.call_delay); returns the seconds slept."""
        headers = response.headers if response is not None else {}
        delay = retry.call_delay(
            attempt, headers.get("Retry-After"), budget=retry.MAX_TOTAL_WAIT_SECONDS - waited,
            rate_limit_reset=headers.get("X-RateLimit-Reset"),
        )  # fmt: skip
        self.sleep(delay)
        return delay

    def request(self, method, path, *, json=None, params=None, action=None):
        """Call Jira and return the decoded JSON (None for an empty answer); raise JiraError otherwise."""
        url = self.url(path)
        auth = self._auth()
        refreshed = False
        attempt = 0
        waited = 0.0
        limits = quota.Policy(self.site, bulk=self.bulk, sleep=self.sleep)
        while True:
            attempt += 1
            limits.before(method, path)
            headers = {"Accept": "application/json", **auth.pop("headers", {})}
            try:
                response = http.send(
                    method, url, event=self.event, actor=self.actor, action=action, json=json, params=params,
                    headers=headers, **auth,
                )  # fmt: skip
            except requests.ConnectTimeout as exc:
                raise JiraError(f"Jira unreachable: {exc}", transient=True) from exc
            except requests.RequestException as exc:
                # The request may have reached Jira (read timeout, connection reset after sending).
                if retry.may_retry_call(method, attempt, waited):
                    waited += self._backoff(attempt, waited)
                    auth = self._auth()
                    continue
                raise JiraError(
                    f"No answer from Jira: {exc}", transient=True, ambiguous=method not in retry.IDEMPOTENT
                ) from exc
            status = response.status_code
            if status == 401 and self.site.auth_method == self.site.AuthMethod.OAUTH2 and not refreshed:
                refreshed = True
                auth = self._auth(tokens.refresh(self.site, stale_token=headers["Authorization"][7:]))
                continue
            if status == 429:
                limits.after(method, path, status, response.headers)  # waits, or raises MustWait
                if attempt <= retry.MAX_RATE_LIMIT_WAITS:
                    auth = self._auth()
                    continue
                break
            if status >= 500 and retry.may_retry_call(method, attempt, waited, status):
                limits.after(method, path, status, response.headers)
                waited += self._backoff(attempt, waited, response)
                auth = self._auth()
                continue
            break
        if status >= 400:
            if status != 429:
                limits.after(method, path, status, response.headers)
            raise JiraError(
                f"Jira {method} {path} → {status}: {error_message(response)}",
                status=status,
                transient=status == 429 or status >= 500,
                ambiguous=status >= 500 and method not in retry.IDEMPOTENT,
                body=response.text[:2000],
            )
        body = None
        if status != 204 and response.content:
            try:
                body = response.json()
            except ValueError:
                body = None
        limits.after(method, path, status, response.headers, body)
        return body

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    # Connection checks and discovery
    def myself(self):
        return self.get(MYSELF)

    def server_info(self):
        return self.get(SERVER_INFO)

    def project(self, key):
        return self.get(PROJECT.format(key=key))

    def issue_types(self, project_key):
        """Issue types creatable in a project (createmeta per project; the global createmeta is deprecated)."""
        data = self.get(CREATEMETA_ISSUETYPES.format(project=project_key), params={"maxResults": 200})
        return data.get("issueTypes") or data.get("values") or []

    def create_fields(self, project_key, issuetype_id):
        data = self.get(
            CREATEMETA_FIELDS.format(project=project_key, issuetype_id=issuetype_id),
            params={"maxResults": 200},
        )
        return data.get("fields") or data.get("values") or []

    # Issues
    @staticmethod
    def _properties(properties):
        """Entity properties as Jira wants them: [{"key": ..., "value": ...}] (a dict is converted)."""
        if isinstance(properties, dict):
            return [{"key": key, "value": value} for key, value in properties.items()]
        return list(properties or [])

    def create_issue(self, fields, properties=None):
        """POST /issue with the fields and, in the same request, entity properties; returns {id, key, ...}."""
        body = {"fields": fields}
        if properties:
            body["properties"] = self._properties(properties)
        return self.request("POST", ISSUES, json=body)

    def create_issues(self, issue_updates):
        """POST /issue/bulk (Cloud v3 and Server/DC v2): up to 50 create bodies ({"fields", "properties"}) in one
        request. Returns {"issues": [{id, key, …} in request order, the failed ones left out], "errors":
        [{"failedElementNumber": n, "elementErrors": {…}, "status": …}]}; 400 only when every element failed."""
        return self.request("POST", ISSUES_BULK, json={"issueUpdates": list(issue_updates)})

    def update_issue(self, key, fields):
        self.request("PUT", ISSUE.format(key=key), json={"fields": fields})

    def get_issue(self, key, fields=("summary",), properties=()):
        """The issue, or None when Jira says 404 (deleted, moved out of reach, never existed)."""
        params = {"fields": ",".join(fields)}
        if properties:
            params["properties"] = ",".join(properties)
        try:
            return self.get(ISSUE.format(key=key), params=params)
        except JiraError as exc:
            if exc.status == 404:
                return None
            raise

    def delete_issue(self, key):
        """Delete an issue; True when deleted, False when it was already gone."""
        try:
            self.request("DELETE", ISSUE.format(key=key))
        except JiraError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def issue_property(self, key, property_key):
        """The value of an issue's entity property, or None when the issue or property is missing."""
        try:
            found = self.get(ISSUE_PROPERTY.format(key=key, property=property_key))
        except JiraError as exc:
            if exc.status == 404:
                return None
            raise
        return (found or {}).get("value")

    def search_jql(self, jql, fields=("summary", "labels"), max_results=50):
        """Issues matching `jql`, up to `max_results` (Cloud: /search/jql with nextPageToken)."""
        found = []
        params = {"jql": jql, "fields": ",".join(fields), "maxResults": min(max_results, 100)}
        if self.dialect.search_by_token:
            while len(found) < max_results:
                page = self.get(self.dialect.search_path, params=params) or {}
                found += page.get("issues") or []
                token = page.get("nextPageToken")
                if page.get("isLast", not token) or not token:
                    break
                params = {**params, "nextPageToken": token}
        else:
            params["startAt"] = 0
            while len(found) < max_results:
                page = self.get(self.dialect.search_path, params=params) or {}
                issues = page.get("issues") or []
                found += issues
                params = {**params, "startAt": params["startAt"] + len(issues)}
                if not issues or params["startAt"] >= int(page.get("total") or 0):
                    break
        return found[:max_results]

    # Worklogs
    def add_worklog(self, issue_key, body, properties=None):
        """POST a worklog (body: started, timeSpentSeconds, comment) with properties in the same request."""
        body = dict(body)
        if properties:
            body["properties"] = self._properties(properties)
        return self.request("POST", WORKLOGS.format(key=issue_key), json=body)

    def update_worklog(self, issue_key, worklog_id, body):
        return self.request("PUT", WORKLOG.format(key=issue_key, worklog_id=worklog_id), json=body)

    def get_worklog(self, issue_key, worklog_id):
        """One worklog (started, timeSpentSeconds, comment, …), or None when it or its issue is gone (404)."""
        try:
            return self.get(WORKLOG.format(key=issue_key, worklog_id=worklog_id))
        except JiraError as exc:
            if exc.status == 404:
                return None
            raise

    def delete_worklog(self, issue_key, worklog_id):
        """Delete a worklog; True when deleted, False when it (or its issue) was already gone."""
        try:
            self.request("DELETE", WORKLOG.format(key=issue_key, worklog_id=worklog_id))
        except JiraError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def list_worklogs(self, issue_key):
        """All worklogs of an issue, each with its entity properties (expand=properties)."""
        found = []
        params = {"startAt": 0, "maxResults": 5000, "expand": "properties"}
        while True:
            page = self.get(WORKLOGS.format(key=issue_key), params=params) or {}
            worklogs = page.get("worklogs") or []
            found += worklogs
            params = {**params, "startAt": params["startAt"] + len(worklogs)}
            if not worklogs or params["startAt"] >= int(page.get("total") or 0):
                return found

    # Users
    def find_user(self, email):
        """The Jira user with this email: accountId on Cloud, username on Server; None when not found.

        Only a user whose visible email is exactly this one is taken. Cloud's search is fuzzy (display names
        and email prefixes) and often hides email addresses: a single hit with a hidden email could be anyone
        whose name starts like the FreshBooks contact's email, so it is not taken (add a Jira user match).
        """
        email = (email or "").strip()
        if not email:
            return None
        params = {self.dialect.user_search_param: email, "maxResults": 10}
        users = [user for user in (self.get(USER_SEARCH, params=params) or []) if user.get("active", True)]
        id_key = self.dialect.user_field
        exact = [user for user in users if (user.get("emailAddress") or "").lower() == email.lower()]
        return exact[0].get(id_key) if exact else None
