from django.apps import AppConfig
from django.core import checks
from django.db.models.signals import post_migrate


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants and connections"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from tenants.safety import sandbox_database_check
        from tenants.tasks import ensure_schedule  # imports models: only once the app registry is ready

        post_migrate.connect(ensure_schedule, sender=self, dispatch_uid="tenants.ensure_schedule")
        checks.register(sandbox_database_check)
