"""{% getting_started %} (every tenant) or {% getting_started tenant %}: the admin's getting-started panel."""

from django import template

from tenants.models import Tenant
from tenants.setup import connect_blocker, tenant_status

register = template.Library()


@register.inclusion_tag("tenants/getting_started.html")
def getting_started(tenant=None):
    tenants = [tenant] if tenant is not None else list(
        Tenant.objects.select_related("jira_site").prefetch_related("freshbooks_accounts").order_by("name")
    )  # fmt: skip
    blockers = [b for b in (connect_blocker("freshbooks"), connect_blocker("jira")) if b]
    return {
        "rows": [(t, tenant_status(t)) for t in tenants],
        "blockers": blockers,
        "single": tenant is not None,
    }
