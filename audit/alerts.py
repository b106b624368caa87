"""Alerts: mail the operators (Django's mail_admins, recipients in settings.ADMINS) when something needs them.

- the first failed event of a kind (invoice, time_entry…) per tenant in each clock hour;
- a connection (FreshBooks account or Jira site) that needs reconnecting, when it happens;
- a lapsed Jira webhook (its expiry passed without a refresh), once per lapse.

Every occurrence is counted on an `audit.Alert` row (tenant, kind, subject, hour); only the occurrence that
creates the row mails: after the surrounding transaction commits, `audit.tasks.mail_alert` is queued and a
worker sends it (within EMAIL_TIMEOUT), so a slow or silent mail server never holds up event processing.
A mail names the tenant, what happened and
where to look in the admin — never a secret, a payload, a record or a vendor's error text.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import mail_admins
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from audit.metrics import ALERTS, label
from audit.models import Alert
from audit.schedules import MAIL_ALERT
from config.queueing import enqueue

log = logging.getLogger(__name__)


def raise_alert(tenant, kind, subject, message, *, once=False):
    """Count one occurrence of (tenant, kind, subject) in this hour; the first one mails the admins.

    once: mail only the first occurrence ever of this subject (a lapse, not each hour it lasts).
    Returns True when this occurrence is the one that mails. Mail failures are logged, never raised."""
    now = timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    same = Alert.objects.filter(tenant=tenant, kind=kind, subject=subject[:100])
    if same.filter(hour=hour).update(occurrences=F("occurrences") + 1, last_at=now):
        return False
    first = not (once and same.exists())
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                tenant=tenant,
                kind=kind,
                subject=subject[:100],
                hour=hour,
                first_at=now,
                last_at=now,
                mailed=first and bool(settings.ADMINS),
            )
    except IntegrityError:  # another process counted the first occurrence of this hour a moment ago
        same.filter(hour=hour).update(occurrences=F("occurrences") + 1, last_at=now)
        return False
    if first:
        ALERTS.labels(label(kind, Alert.Kind.values)).inc()
        if alert.mailed:
            enqueue(MAIL_ALERT, alert.pk, message, on_commit=True)
    return first


def mail(alert, message):
    """Send the alert's mail to ADMINS (called by the audit.tasks.mail_alert task). Returns True when sent;
    a failure (mail server down, or silent past EMAIL_TIMEOUT) is logged and clears `mailed`."""
    subject = f"{alert.tenant.slug}: {alert.get_kind_display().lower()} — {alert.subject}"
    body = (
        f"Tenant: {alert.tenant.name} ({alert.tenant.slug})\n"
        f"{message}\n"
        f"When: {alert.first_at:%Y-%m-%d %H:%M:%S %Z}\n\n"
        f"Further occurrences for this tenant this hour are counted in the admin, not mailed.\n"
        f"Admin: {settings.PUBLIC_BASE_URL}{reverse('admin:index')}\n"
    )
    try:
        mail_admins(subject, body)
    except Exception:  # a mail server outage must not stop the worker
        log.exception("Could not mail the alert %s", alert)
        Alert.objects.filter(pk=alert.pk).update(mailed=False)
        return False
    return True


def event_failed(event):
    """An event finished failed: the first of its kind for its tenant this hour mails."""
    if event.tenant is None:
        return False
    kind = event.name.split(".", 1)[0]
    url = f"{settings.PUBLIC_BASE_URL}{reverse('admin:audit_event_change', args=[event.pk])}"
    message = (
        f"Event #{event.pk} ({event.name}, {event.get_source_display()} id {event.object_id}) failed "
        f"after {event.attempts} attempt(s). The reason is on its page: {url}"
    )
    return raise_alert(event.tenant, Alert.Kind.EVENT_FAILED, kind, message)


def needs_reconnect(sender, connection, **kwargs):
    """Receiver of tenants.tokens.reconnect_required: the connection's credentials were refused for good (a
    refresh token, an API token or personal access token, a CAPTCHA lock-out). The reason is the connector's
    own words (tenants.tokens.mark_reconnect callers), never a vendor's text."""
    label = connection._meta.verbose_name
    message = (
        f"The {label} {connection.pk} needs reconnecting: {connection.last_error or 'its credentials were refused'}\n"
        f"Events fail and no call is made on it until someone fixes it (OAuth: Tenants → the tenant → Connect; "
        f"API token or personal access token: enter a new one on the {label} and save)."
    )
    return raise_alert(connection.tenant, Alert.Kind.NEEDS_RECONNECT, f"{label} {connection.pk}", message)


def webhook_lapsed(site, now=None):
    """Mail once per lapse when the Jira site's dynamic webhooks expired without a refresh."""
    expires = site.webhook_expires_at
    if expires is None or expires > (now or timezone.now()):
        return False
    message = (
        f"The Jira webhooks of {site} expired at {expires:%Y-%m-%d %H:%M %Z}: changes and deletions in Jira "
        f"are no longer noticed. Run `manage.py refresh_jira_webhooks --tenant {site.tenant.slug}` after "
        f"fixing the cause shown on the Jira site's page."
    )
    subject = f"Jira site {site.pk} expired {expires:%Y-%m-%dT%H:%M}"
    return raise_alert(site.tenant, Alert.Kind.WEBHOOK_LAPSED, subject, message, once=True)


def recent(tenant, hours=24):
    """The tenant's alerts of the last `hours`."""
    return Alert.objects.filter(tenant=tenant, hour__gte=timezone.now() - timedelta(hours=hours))
