"""The suggested groups (tenants 0004) see alerts too: alerts came after them (audit 0003)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():  # permissions are normally created after `migrate`
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    alerts = Permission.objects.filter(content_type__app_label="audit", content_type__model="alert")
    for group in Group.objects.filter(name__in=["viewer", "operator"]):
        group.permissions.add(*alerts.filter(codename="view_alert"))
    for group in Group.objects.filter(name="administrator"):
        group.permissions.add(*alerts)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_opsb_alerts_retention"),
        ("tenants", "0004_priv_groups"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
