from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.test.signals import setting_changed

        from audit.fields import reset_key_caches

        setting_changed.connect(reset_key_caches)
