from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """The vendor sandbox: `manage.py sandbox`, its pages' templates and the admin's sandbox banner."""

    name = "connector.sandbox"
    label = "sandbox"
    verbose_name = "Vendor sandbox"
