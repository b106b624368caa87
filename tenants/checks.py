"""Connection checks shared by `manage.py check_connections`, the admin action "Test connection",
`create_tenant` and the API-token Jira site form.

Each check is cheap and read-only: FreshBooks identity plus one list call; Jira `myself`, the mapped
projects, their creatable issue types and, per enabled mapping, that the create screen has every field the
mapping sends (connector.jira.screens).
"""

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from connector.errors import ConnectorError, FreshBooksError, JiraError, VendorError
from connector.freshbooks.client import FreshBooksClient
from connector.jira import screens
from connector.jira.client import JiraClient
from connector.transport import network_reason
from tenants.models import ConnectionStatus, JiraSite
from tenants.vendor_urls import check_vendor_url

LIST_CLIENTS = "/accounting/account/{account_id}/users/clients"
OK, FAIL = "ok", "FAIL"


class CheckError(ConnectorError):
    """A connection check failed; the message is one line an operator can act on."""


def unreachable(base_url, exc):
    """'<host> could not be reached: <reason in plain words>' for a network failure (`exc` and its causes)."""
    host = urlsplit(base_url).hostname or base_url
    return f"{host} could not be reached: {network_reason(exc)}."


@dataclass
class Result:
    tenant: str
    side: str
    status: str
    detail: str

    @property
    def ok(self):
        return self.status == OK


def _no_sleep(_seconds):
    """Checks answer now: no backoff waits on a site that does not answer."""


HINTS = {
    401: "credentials refused",
    403: "permission denied",
    404: "not found",
    429: "rate limited",
}


def failure(exc):
    """What a user is shown of a failed vendor call: the HTTP status (with a hint) or that the vendor could
    not be reached. Never the remote answer: a URL pointed at an internal server must not reveal it."""
    status = getattr(exc, "status", None)
    if getattr(exc, "needs_reconnect", False):  # our own words: why the credentials are refused
        return str(exc)
    if isinstance(exc, (JiraError, FreshBooksError)):
        if status is None:
            return "no answer (unreachable, timed out or not a JSON answer)"
        hint = HINTS.get(status) or ("server error" if status >= 500 else "refused")
        return f"HTTP {status} ({hint})"
    return str(exc)


def probe_jira_site(base_url, email, api_token, auth_method=JiraSite.AuthMethod.BASIC):
    """Reach a token site (Basic: email or user name + API token; PAT: a Data Center personal access token):
    returns (deployment, display name) or raises CheckError.

    `serverInfo` tells Cloud from Server/Data Center (v3 exists on Cloud only, v2 on both); `myself`
    proves the credentials.
    """
    try:
        check_vendor_url(base_url)
    except ValidationError as exc:
        raise CheckError(" ".join(exc.messages)) from exc
    site = JiraSite(base_url=base_url.rstrip("/"), email=email, api_token=api_token, auth_method=auth_method)
    email = email or "the personal access token"
    info = None
    for deployment in (JiraSite.Deployment.CLOUD, JiraSite.Deployment.SERVER):
        site.deployment = deployment
        try:
            info = JiraClient(site, actor="check", sleep=_no_sleep).server_info()
            break
        except JiraError as exc:
            if exc.status is None:  # no HTTP answer at all
                raise CheckError(unreachable(base_url, exc)) from exc
            if exc.status in (401, 403):
                raise CheckError(f"Jira refused the credentials for {email}: {failure(exc)}") from exc
            if exc.status != 404:
                raise CheckError(f"Jira at {base_url} did not answer serverInfo: {failure(exc)}") from exc
    if not isinstance(info, dict):
        raise CheckError(f"{base_url} does not look like a Jira site (no serverInfo).")
    kind = (info.get("deploymentType") or "").lower()
    site.deployment = JiraSite.Deployment.CLOUD if kind == "cloud" else JiraSite.Deployment.SERVER
    try:
        me = JiraClient(site, actor="check", sleep=_no_sleep).myself()
    except JiraError as exc:
        if exc.status in (401, 403):
            raise CheckError(f"Jira refused the credentials for {email}: {failure(exc)}") from exc
        raise CheckError(f"Jira myself failed: {failure(exc)}") from exc
    return site.deployment, (me or {}).get("displayName") or email


def check_jira_project(site, project_key, issue_types=()):
    """Raise CheckError unless the project exists and every name in `issue_types` is creatable there."""
    client = JiraClient(site, actor="check", sleep=_no_sleep)
    try:
        client.project(project_key)
    except JiraError as exc:
        if exc.status == 404:
            raise CheckError(f"project {project_key} not found (or not visible to this user)") from exc
        raise CheckError(f"project {project_key}: {failure(exc)}") from exc
    try:
        creatable = {t.get("name") for t in client.issue_types(project_key)}
    except JiraError as exc:
        raise CheckError(f"issue types of {project_key}: {failure(exc)}") from exc
    missing = sorted(set(issue_types) - creatable)
    if missing:
        raise CheckError(
            f"issue type(s) {', '.join(missing)} cannot be created in {project_key} "
            f"(creatable: {', '.join(sorted(filter(None, creatable))) or 'none'})"
        )


def check_freshbooks(tenant):
    accounts = list(tenant.freshbooks_accounts.all())
    if not accounts:
        return [Result(tenant.slug, "freshbooks", FAIL, "not connected")]
    results = []
    for account in accounts:
        label = account.business_name or account.account_id
        client = FreshBooksClient(account, actor="check")
        try:
            me = client.me()
            businesses = {
                str((m.get("business") or {}).get("id")) for m in me.get("business_memberships") or []
            }
            if account.business_id not in businesses:
                raise CheckError(f"{label}: the connected user is no longer a member of this business")
            client.request(
                "GET", LIST_CLIENTS.format(account_id=account.account_id), params={"page": 1, "per_page": 1}
            )
        except ConnectorError as exc:  # CheckError or a vendor error
            results.append(Result(tenant.slug, "freshbooks", FAIL, f"{label}: {failure(exc)}"))
            continue
        results.append(Result(tenant.slug, "freshbooks", OK, f"{label} as {me.get('email') or 'user'}"))
    return results


def check_jira(tenant):
    site = JiraSite.objects.filter(tenant=tenant).first()
    if site is None:
        return [Result(tenant.slug, "jira", FAIL, "no Jira site")]
    try:
        me = JiraClient(site, actor="check", sleep=_no_sleep).myself() or {}
    except VendorError as exc:
        return [Result(tenant.slug, "jira", FAIL, f"{site}: {failure(exc)}")]
    if site.auth_method != JiraSite.AuthMethod.OAUTH2 and site.status != ConnectionStatus.CONNECTED:
        # The credentials work again (e.g. a new API token after a refusal): calls on the site resume.
        JiraSite.objects.filter(pk=site.pk).update(status=ConnectionStatus.CONNECTED, last_error="")
    results = [Result(tenant.slug, "jira", OK, f"{site} as {me.get('displayName') or me.get('name') or '?'}")]
    wanted = {}
    for mapping in tenant.mappings.filter(enabled=True):
        wanted.setdefault(mapping.project_key, set()).add(mapping.issue_type)
    if not wanted:
        results.append(Result(tenant.slug, "jira", FAIL, "no enabled mappings"))
    for project_key, issue_types in sorted(wanted.items()):
        try:
            check_jira_project(site, project_key, issue_types)
        except ConnectorError as exc:  # CheckError or a vendor error
            results.append(Result(tenant.slug, "jira", FAIL, str(exc)))
        else:
            types = ", ".join(sorted(issue_types))
            results.append(Result(tenant.slug, "jira", OK, f"project {project_key}: {types} creatable"))
    results += [Result(tenant.slug, "jira", FAIL, problem) for problem in screen_problems(site, tenant)]
    return results


def check_create_screen(site, project_key, issue_type, mapping):
    """Raise CheckError unless the create screen of the project's `issue_type` has every field `mapping` (an
    IssueMapping or a dict of its fields) sends (connector.jira.screens.needed_fields)."""
    client = JiraClient(site, actor="check", sleep=_no_sleep)
    try:
        found = screens.find_issue_type(client, project_key, issue_type)
        missing = screens.missing_on_screen(client, project_key, found["id"], mapping) if found else {}
    except JiraError as exc:
        raise CheckError(f"create screen of {project_key}: {failure(exc)}") from exc
    if missing:
        raise CheckError(screens.describe_missing(project_key, issue_type, missing))


def screen_problems(site, tenant):
    """One line per enabled mapping whose create screen lacks a field the mapping sends (its own mlc- label
    always; connector.jira.screens), or whose screen could not be read."""
    client = JiraClient(site, actor="check", sleep=_no_sleep)
    problems = []
    for mapping in tenant.mappings.filter(enabled=True).order_by("order", "id"):
        project_key, issue_type = mapping.project_key.strip(), mapping.issue_type.strip()
        try:
            found = screens.find_issue_type(client, project_key, issue_type)
            if found is None:
                continue  # reported with the project above
            missing = screens.missing_on_screen(client, project_key, found["id"], mapping)
        except JiraError as exc:
            if exc.status != 404:  # a missing project is reported with the project above
                problems.append(f"mapping “{mapping.name}”: create screen of {project_key}: {failure(exc)}")
            continue
        if missing:
            problems.append(
                f"mapping “{mapping.name}”: {screens.describe_missing(project_key, issue_type, missing)}"
            )
    return problems


def check_tenant(tenant):
    return check_freshbooks(tenant) + check_jira(tenant)


def format_table(results):
    rows = [("TENANT", "SIDE", "STATUS", "DETAIL")] + [
        (r.tenant, r.side, r.status, r.detail) for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
        for row in rows
    )
