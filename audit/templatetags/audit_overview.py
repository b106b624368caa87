from django import template

from audit.overview import jira_pool, tenant_health

register = template.Library()


@register.inclusion_tag("admin/audit/tenant_health.html", takes_context=True)
def tenant_health_panel(context):
    """The per-tenant health panel, for users who may view the audit trail (counts only, no content)."""
    request = context.get("request")
    if request is None or not request.user.has_perm("audit.view_event"):
        return {"rows": None}
    rows = tenant_health()
    return {
        "rows": rows,
        "show_reconcile": any(row.last_reconcile is not None for row in rows),
        "pool": jira_pool(),
    }


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
