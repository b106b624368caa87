"""Sandbox mode never runs against a database that holds real connections.

Sandbox mode (settings.SANDBOX: on with SANDBOX=1, or when no vendor credentials are set) points every vendor
URL at the sandbox on loopback. A maintenance command run on a production host from a shell without the
vendor variables would otherwise be in sandbox mode against the production database. `real_connections()`
lists the connections the sandbox did not issue; the system check below turns them into an error, so every
manage.py command that runs checks (the sandbox, qcluster, runserver, maintenance commands) refuses to start.
The token guard (tenants.tokens.check_origin) covers processes that run no checks (gunicorn).
"""

from django.conf import settings
from django.core import checks
from django.db import DatabaseError

LOOPBACK = ("http://127.0.0.1:", "http://localhost:", "http://[::1]:")


def real_connections():
    """The FreshBooks accounts and Jira sites holding credentials that this process's vendors did not issue:
    OAuth tokens from another token endpoint (or of unknown origin), and Jira API tokens or personal access
    tokens for a site that is not on loopback. Returns a list of strings naming them."""
    from tenants.models import FreshBooksAccount, JiraSite
    from tenants.oauth import AtlassianProvider, FreshBooksProvider

    found = []
    oauth = (
        (FreshBooksAccount.objects.all(), FreshBooksProvider()),
        (JiraSite.objects.filter(auth_method=JiraSite.AuthMethod.OAUTH2), AtlassianProvider()),
    )
    for rows, provider in oauth:  # encrypted fields take no lookups: the tokens are checked here
        for row in rows.select_related("tenant").exclude(token_url=provider.token_url):
            if row.access_token or row.refresh_token:
                found.append(f"{row._meta.verbose_name} {row} (tenant {row.tenant.slug})")
    sites = JiraSite.objects.select_related("tenant").exclude(auth_method=JiraSite.AuthMethod.OAUTH2)
    for site in sites:
        if site.api_token and not site.base_url.startswith(LOOPBACK):
            found.append(f"Jira site {site.base_url} (tenant {site.tenant.slug})")
    return found


def sandbox_database_check(app_configs=None, **kwargs):
    """System check (registered by TenantsConfig.ready): error mlc.E001 when sandbox mode is on and the
    database holds real connections."""
    if not settings.SANDBOX:
        return []
    try:
        found = real_connections()
    except DatabaseError:  # not migrated yet (migrate runs the checks first): nothing is connected
        return []
    if not found:
        return []
    shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
    return [
        checks.Error(
            f"Sandbox mode is on, but this database holds real connections: {shown}.",
            hint="Set the vendor credentials (FRESHBOOKS_CLIENT_ID …, as the deployment does) or point "
            "DATABASE_URL at a sandbox database. Sandbox mode never runs against real connections.",
            id="mlc.E001",
        )
    ]
