"""Credentials that expire: API tokens (at most a year for tokens made since December 2024; older ones were set
to expire in spring 2026, support.atlassian.com "Manage API tokens for your Atlassian account") and Data Center
personal access tokens carry an optional "expires on" date (JiraSite.credentials_expire_on).

`warn_expiring` (daily, tenants.schedules) mails the operators EXPIRY_WARNINGS days before — once each, per
site and date (audit.alerts, kind token_expiring) — and the health panel shows it (audit.overview). When the
date passes, Jira answers 401 and the site turns "Needs reconnect" (connector.transport).
"""

from django.utils import timezone

from audit.alerts import raise_alert
from audit.models import Alert
from tenants.models import ConnectionStatus, JiraSite

EXPIRY_WARNINGS = (30, 7)  # days before the date, widest first


def due_warning(site, today):
    """The warning due for `site` today: the tightest of EXPIRY_WARNINGS its date is within (an expired token
    gets the last one), or None."""
    if site.credentials_expire_on is None or site.auth_method == JiraSite.AuthMethod.OAUTH2:
        return None
    days = (site.credentials_expire_on - today).days
    due = [limit for limit in EXPIRY_WARNINGS if days <= limit]
    return due[-1] if due else None


def warn_expiring(now=None):
    """Raise the due expiry alert of every token site (once per site, date and warning); returns how many
    mailed."""
    today = timezone.localdate(now)
    sites = JiraSite.objects.filter(credentials_expire_on__isnull=False).exclude(
        status=ConnectionStatus.DISCONNECTED
    )
    mailed = 0
    for site in sites.select_related("tenant"):
        limit = due_warning(site, today)
        if limit is None:
            continue
        expires = site.credentials_expire_on
        days = (expires - today).days
        when = (
            f"expired on {expires:%Y-%m-%d}" if days < 0 else f"expires on {expires:%Y-%m-%d} ({days} days)"
        )
        what = "personal access token" if site.auth_method == JiraSite.AuthMethod.PAT else "API token"
        message = (
            f"The {what} of the Jira site {site} {when}. Make a new one in Jira and enter it on the Jira site "
            "(with its new expiry date) before then: when it expires, Jira refuses every call and the site "
            "stops at “Needs reconnect”."
        )
        subject = f"Jira site {site.pk} token {expires:%Y-%m-%d}: {limit} days"
        mailed += raise_alert(site.tenant, Alert.Kind.TOKEN_EXPIRING, subject, message, once=True)
    return mailed
