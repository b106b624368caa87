from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.test.signals import setting_changed

        from audit import alerts, retention
        from audit.fields import reset_key_caches
        from tenants.tokens import reconnect_required

        setting_changed.connect(reset_key_caches)
        reconnect_required.connect(alerts.needs_reconnect, dispatch_uid="audit.alerts.needs_reconnect")
        post_migrate.connect(
            retention.sync_schedule, sender=self, dispatch_uid="audit.retention.sync_schedule"
        )
