"""A thin Jira REST client on the one transport (connector.transport): Cloud v3 or Server/Data Center v2
(connector.jira.dialect); Basic (email or user name + API token), personal access token (Data Center, Bearer)
or OAuth 2.0.

Sending, retries (a POST is never re-sent: Jira has no idempotency key, the ledger decides), the response
contract and error mapping are the transport's; this module keeps Jira's URLs, credentials, what a refusal
of them looks like and how Jira's errors read. Failures raise connector.errors.JiraError.
"""

import re
import time

from requests.auth import HTTPBasicAuth

from connector.errors import JiraError
from connector.jira import quota
from connector.jira.dialect import dialect_for
from connector.transport import VendorClient
from tenants import tokens
from tenants.models import ConnectionStatus

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

__all__ = ["JiraClient", "JiraError", "credentials_refused", "error_message"]

DENIED_HEADERS = ("X-Authentication-Denied-Reason", "X-Seraph-LoginReason")
WORD = re.compile(r"[A-Za-z_]{1,40}")


def credentials_refused(site, response):
    """Why Jira refuses `site`'s credentials for good (an operator must fix them), or None.

    - Data Center's CAPTCHA lock-out: 403 with ``X-Authentication-Denied-Reason`` (e.g. ``CAPTCHA_CHALLENGE;
      login-url=…``) or ``X-Seraph-LoginReason: AUTHENTICATION_DENIED`` (Jira Server/DC login headers);
    - a 401 on an API-token or personal-access-token site (expired, revoked or mistyped token).
    An OAuth site's 401 is met by a token refresh instead (tenants.tokens). Only the header's leading word is
    shown, never the answer's body."""
    reason = response.headers.get("X-Authentication-Denied-Reason") or ""
    seraph = response.headers.get("X-Seraph-LoginReason") or ""
    word = WORD.match(reason.strip()) or WORD.match(seraph.strip())
    if response.status_code == 403 and (reason or "AUTHENTICATION_DENIED" in seraph.upper()):
        return (
            f"Jira locked the sign-in of {site.email or 'the connector'} "
            f"({word.group(0) if word else 'CAPTCHA'}): sign in to Jira once in a browser to clear the CAPTCHA, or "
            "better use a personal access token; then save the Jira site with its credentials again."
        )
    if response.status_code == 401 and site.auth_method != site.AuthMethod.OAUTH2:
        what = "personal access token" if site.auth_method == site.AuthMethod.PAT else "API token"
        return (
            f"Jira refused the {what} (HTTP 401): it has expired, was revoked or is wrong. Enter a new one on "
            "the Jira site and save it (it is checked), or run Test connection after replacing it."
        )
    return None


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


class JiraClient(VendorClient):
    """Jira's URLs, credentials and refusals on the one transport (connector.transport)."""

    vendor = "Jira"
    error_class = JiraError
    redirect_advice = "update the Jira site URL to where it moved"
    rate_limit = quota.JiraRateLimit()  # Jira's quota, burst and per-issue limits (connector.jira.quota)

    def __init__(self, site, event=None, actor="worker", sleep=time.sleep, bulk=None):
        super().__init__(event=event, actor=actor, sleep=sleep)
        self.site = site
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

    def credentials(self):
        """OAuth 2.0 and personal access tokens: Bearer; API tokens: Basic (email, or user name on Server)."""
        method = self.site.auth_method
        if method == self.site.AuthMethod.OAUTH2:
            return {"headers": {"Authorization": f"Bearer {tokens.access_token(self.site)}"}}
        if method == self.site.AuthMethod.PAT:
            return {"headers": {"Authorization": f"Bearer {self.site.api_token}"}}
        return {"auth": HTTPBasicAuth(self.site.email, self.site.api_token)}

    def refresh_credentials(self, sent):
        if self.site.auth_method != self.site.AuthMethod.OAUTH2:
            return None
        stale = sent["headers"]["Authorization"][len("Bearer ") :]
        return {"headers": {"Authorization": f"Bearer {tokens.refresh(self.site, stale_token=stale)}"}}

    def refused(self, response):
        return credentials_refused(self.site, response)

    def stopped(self):
        """API-token and personal-access-token sites marked "Needs reconnect" get no call until fixed (OAuth
        sites are stopped by tenants.tokens). Connection checks (actor "check") still try: they prove a fix."""
        if self.actor == "check" or self.site.auth_method == self.site.AuthMethod.OAUTH2:
            return None
        if self.site.status == ConnectionStatus.NEEDS_RECONNECT:
            return self.site.last_error or f"The Jira site {self.site} needs new credentials."
        return None

    def stop(self, reason):
        if self.site.pk:
            tokens.mark_reconnect(self.site, reason)

    def error_message(self, response):
        return error_message(response)

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

    def delete_issue(self, key, delete_subtasks=False):
        """Delete an issue; True when deleted, False when it was already gone. Jira refuses (400) to delete an
        issue with sub-tasks unless `delete_subtasks` (``deleteSubtasks=true``: they are deleted with it)."""
        params = {"deleteSubtasks": "true"} if delete_subtasks else None
        try:
            self.request("DELETE", ISSUE.format(key=key), params=params)
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
