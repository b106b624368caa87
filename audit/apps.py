from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.test.signals import setting_changed

from audit.fields import reset_key_caches
from connector import http


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Imported here, not at the top: they import models, which load only after the app registry.
        from audit import alerts, metrics
        from audit.recording import record_call
        from audit.schedules import SCHEDULES
        from config.queueing import schedules_on_migrate
        from tenants.tokens import reconnect_required

        setting_changed.connect(reset_key_caches)
        http.on_call(record_call)  # every outbound vendor call made for an event becomes an Attempt
        http.on_call(metrics.count_call)  # … and is counted in mlc_vendor_calls_total
        reconnect_required.connect(alerts.needs_reconnect, dispatch_uid="audit.alerts.needs_reconnect")
        post_migrate.connect(
            schedules_on_migrate(SCHEDULES), sender=self, weak=False, dispatch_uid="audit.schedules"
        )
