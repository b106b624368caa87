from django.apps import AppConfig


class ConnectorConfig(AppConfig):
    name = "connector"
    verbose_name = "Sync: mappings, rules and links"
    default_auto_field = "django.db.models.BigAutoField"
