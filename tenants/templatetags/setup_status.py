"""{% getting_started %} (every tenant) or {% getting_started tenant %}: the admin's getting-started panel."""

from django import template

from tenants.models import Tenant
from tenants.setup import connect_blocker, tenant_status

register = template.Library()

MAX_ROWS = 20  # the index lists the tenants that need a step first, then running ones, up to this many


@register.inclusion_tag("tenants/getting_started.html")
def getting_started(tenant=None):
    if tenant is not None:
        rows, more = [(tenant, tenant_status(tenant))], 0
    else:
        tenants = Tenant.objects.select_related("jira_site").prefetch_related("freshbooks_accounts")
        rows = [(t, tenant_status(t)) for t in tenants.order_by("name")[: MAX_ROWS * 5]]
        rows.sort(key=lambda row: row[1]["step_code"] == "running")  # stable: names stay in order
        more = max(0, Tenant.objects.count() - MAX_ROWS)
        rows = rows[:MAX_ROWS]
    blockers = [b for b in (connect_blocker("freshbooks"), connect_blocker("jira")) if b]
    return {"rows": rows, "blockers": blockers, "single": tenant is not None, "more": more}
