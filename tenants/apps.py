from django.apps import AppConfig
from django.core import checks
from django.db.models.signals import post_migrate


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants and connections"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Here, not at the top: django-q2 and the checks import models, which load only after the app registry.
        from config.queueing import schedules_on_migrate
        from tenants.safety import sandbox_database_check
        from tenants.schedules import SCHEDULES

        post_migrate.connect(
            schedules_on_migrate(SCHEDULES), sender=self, weak=False, dispatch_uid="tenants.schedules"
        )
        checks.register(sandbox_database_check)
