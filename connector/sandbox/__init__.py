"""The built-in vendor sandbox: loopback fakes of FreshBooks and Jira (Atlassian sign-in included).

The same modules are the tests' vendor fakes. `runtime.Sandbox` assembles them for `manage.py sandbox`;
`setup_tenant()` below creates the sandbox tenant with its default mappings and worklog rule.
"""

from django.conf import settings

TENANT_SLUG, TENANT_NAME, PROJECT_KEY = "sandbox", "Sandbox Bakery", "FIN"


def admin_context(request):
    """Template context processor: `sandbox` (the sandbox pages' URLs) in sandbox mode, for the admin banner."""
    if not settings.SANDBOX:
        return {}
    return {
        "sandbox": {"freshbooks": settings.FRESHBOOKS_API_URL + "/", "jira": settings.ATLASSIAN_API_URL + "/"}
    }


def setup_tenant():
    """The sandbox tenant (created once, with the default mappings to FIN and the "Jira key in the note"
    worklog rule); returns (tenant, created). Connecting it is left to the operator, through the OAuth pages."""
    # Model imports stay here: this package is also imported by the settings (no app registry yet).
    from connector.defaults import create_default_mappings, create_default_worklog_rule
    from tenants.models import Tenant

    tenant, created = Tenant.objects.get_or_create(slug=TENANT_SLUG, defaults={"name": TENANT_NAME})
    if created:
        create_default_mappings(tenant, PROJECT_KEY)
        create_default_worklog_rule(tenant)
    return tenant, created
