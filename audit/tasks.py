"""django-q2 tasks of the audit app: `mail_alert(alert_id, message)`, queued by audit.alerts.raise_alert."""

from audit import alerts
from audit.models import Alert


def mail_alert(alert_id, message):
    """Mail one alert to ADMINS (SMTP bounded by EMAIL_TIMEOUT). Returns "sent", "failed" or "gone" (the
    alert row was pruned before the task ran)."""
    alert = Alert.objects.select_related("tenant").filter(pk=alert_id).first()
    if alert is None:
        return "gone"
    return "sent" if alerts.mail(alert, message) else "failed"
