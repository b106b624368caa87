from django.apps import AppConfig
from django.test.signals import setting_changed

from audit.fields import reset_key_caches
from connector import http


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Imported here, not at the top: it imports models, which load only after the app registry.
        from audit.recording import record_call

        setting_changed.connect(reset_key_caches)
        http.on_call(record_call)  # every outbound vendor call made for an event becomes an Attempt
