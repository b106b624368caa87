"""Setup status for operators: why a Connect button cannot work yet, and each tenant's next step.

`connect_blocker(vendor)` is "" when the OAuth flow of "freshbooks" or "jira" can start, else a sentence
naming what to set (client id and secret, https PUBLIC_BASE_URL, https vendor URLs; the sandbox needs none,
and ALLOW_LOCAL_VENDOR_URLS allows http for development against loopback fakes).
`tenant_status(tenant)` is a dict for the getting-started panel: "step" (text), "step_code" (connect_freshbooks,
connect_jira, register_webhooks, verifying, running, inactive), "webhooks" (text), "mappings" (int),
"last_event" (audit Event or None).
"""

from django.conf import settings

from audit.models import Event
from tenants.models import FreshBooksWebhook

VENDORS = {
    "freshbooks": (
        "FreshBooks",
        "FRESHBOOKS_CLIENT_ID",
        "FRESHBOOKS_CLIENT_SECRET",
        "FRESHBOOKS_AUTH_URL",
        "a FreshBooks app (my.freshbooks.com → Developer Portal)",
    ),
    "jira": (
        "Jira",
        "ATLASSIAN_CLIENT_ID",
        "ATLASSIAN_CLIENT_SECRET",
        "ATLASSIAN_AUTH_URL",
        "an Atlassian OAuth 2.0 (3LO) app (developer.atlassian.com → My apps)",
    ),
}


def connect_blocker(vendor):
    """ "" when Connect <vendor> can start; else what the operator must set, in plain words."""
    if settings.SANDBOX:
        return ""
    label, id_setting, secret_setting, auth_setting, app = VENDORS[vendor]
    missing = [name for name in (id_setting, secret_setting) if not getattr(settings, name, "")]
    if missing:
        return (
            f"Connect {label} needs {' and '.join(missing)}: create {app} and set them in the environment "
            f"(or .env), then restart."
        )
    local_ok = getattr(settings, "ALLOW_LOCAL_VENDOR_URLS", False)  # development and tests: loopback fakes
    if not settings.PUBLIC_BASE_URL.startswith("https://") and not local_ok:
        return (
            f"PUBLIC_BASE_URL is {settings.PUBLIC_BASE_URL}: {label} only sends sign-ins back to an https "
            "address. Set PUBLIC_BASE_URL to this connector's public https URL (the one registered as the "
            "app's callback), then restart."
        )
    auth_url = getattr(settings, auth_setting)
    if not auth_url.startswith("https://") and not local_ok:
        return f"{auth_setting} is {auth_url}: it must be an https URL (unset it to use {label}'s own)."
    return ""


def tenant_status(tenant):
    accounts = list(tenant.freshbooks_accounts.all())
    site = getattr(tenant, "jira_site", None)
    hooks = list(FreshBooksWebhook.objects.filter(account__tenant=tenant))
    verified = sum(1 for hook in hooks if hook.verified)
    if not hooks:
        webhooks = "FreshBooks: none registered"
    else:
        webhooks = f"FreshBooks: {verified} of {len(hooks)} verified"
    if site is not None:
        jira_state = "registered" if site.webhook_ids and not site.webhook_error else "not registered"
        webhooks += f"; Jira: {jira_state}" + (f" ({site.webhook_error[:120]})" if site.webhook_error else "")
    if not tenant.active:
        code, step = "inactive", "Inactive: deliveries for this tenant are refused."
    elif not accounts:
        code, step = "connect_freshbooks", "Connect FreshBooks."
    elif site is None:
        code, step = "connect_jira", "Connect Jira (OAuth, or add an API-token Jira site)."
    elif not hooks:
        code, step = "register_webhooks", "Register webhooks."
    elif verified < len(hooks):
        code, step = "verifying", "Waiting for FreshBooks to verify the webhooks (it sends a verification)."
    else:
        code, step = "running", "Running: FreshBooks events become Jira issues."
    return {
        "step": step,
        "step_code": code,
        "webhooks": webhooks,
        "mappings": tenant.mappings.filter(enabled=True).count(),
        "last_event": Event.objects.filter(tenant=tenant).order_by("-received_at").first(),
    }
