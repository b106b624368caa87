"""The sandbox tenant, "Sandbox Bakery", mapping to the sandbox Jira's project FIN."""

from connector.defaults import create_default_mappings, create_default_worklog_rule
from tenants.models import Tenant

TENANT_SLUG, TENANT_NAME, PROJECT_KEY = "sandbox", "Sandbox Bakery", "FIN"


def setup_tenant():
    """The sandbox tenant (created once, with the default mappings to FIN and the "Jira key in the note"
    worklog rule); returns (tenant, created). Connecting it is left to the operator, through the OAuth pages."""
    tenant, created = Tenant.objects.get_or_create(slug=TENANT_SLUG, defaults={"name": TENANT_NAME})
    if created:
        create_default_mappings(tenant, PROJECT_KEY)
        create_default_worklog_rule(tenant)
    return tenant, created
