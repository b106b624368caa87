from django import template
from django.template.loader import render_to_string

from audit.flow import flows
from audit.overview import jira_pool, tenant_health

register = template.Library()

MAX_CHARTS = 12  # tenants charted on the admin index (the health panel's first rows)


@register.inclusion_tag("admin/audit/tenant_health.html", takes_context=True)
def tenant_health_panel(context):
    """The per-tenant health panel, for users who may view the audit trail (counts only, no content)."""
    request = context.get("request")
    if request is None or not request.user.has_perm("audit.view_event"):
        return {"rows": None}
    rows = tenant_health()
    charted = rows[:MAX_CHARTS]
    found = flows([row.tenant for row in charted])
    charts = [found[row.tenant.pk].context(row.tenant, show_name=True) for row in charted]
    return {
        "request": request,
        "rows": rows,
        "show_reconcile": any(row.last_reconcile is not None for row in rows),
        "charts": charts,
        "more_tenants": len(rows) - len(charted),
        "pool": jira_pool(),
    }


@register.simple_tag(takes_context=True)
def flow_chart(context, tenant_or_chart):
    """{% flow_chart tenant %} (the tenant page) or {% flow_chart chart %} (a chart of the index's panel): the
    tenant's events per hour by outcome over 7 days (audit.flow), for users who may view the audit trail."""
    request = context.get("request")
    if request is None or not request.user.has_perm("audit.view_event"):
        return ""
    chart = tenant_or_chart
    if not isinstance(chart, dict):
        chart = flows([chart])[chart.pk].context(chart)
    return render_to_string("admin/audit/flow_chart.html", chart)


@register.filter
def age(seconds):
    """Seconds as a short age: 45 s, 12 min, 3.5 h, 2.0 d."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
