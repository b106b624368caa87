"""The audit trail's background work: its tasks by name and its schedules (created after every migrate by
AuditConfig); see config/queueing.py."""

from django.conf import settings

from config.queueing import Every

MAIL_ALERT = "audit.tasks.mail_alert"  # (Alert id, message): mail_admins, off the request path

SCHEDULES = [
    # Daily pruning of finished events' payloads and bodies, while AUDIT_RETENTION_DAYS > 0.
    Every("prune-audit", "audit.retention.prune_scheduled", when=lambda: settings.AUDIT_RETENTION_DAYS > 0),
]
