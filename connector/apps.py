from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate

from config.database import set_session_timeouts


class ConnectorConfig(AppConfig):
    name = "connector"
    verbose_name = "Sync: mappings, rules and links"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Here, not at the top: django-q2 imports its models, which load only after the app registry.
        from config.queueing import schedules_on_migrate
        from connector.schedules import SCHEDULES

        post_migrate.connect(
            schedules_on_migrate(SCHEDULES), sender=self, weak=False, dispatch_uid="connector.schedules"
        )
        connection_created.connect(set_session_timeouts, dispatch_uid="config.database")
