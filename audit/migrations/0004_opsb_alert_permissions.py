"""The suggested groups (tenants 0004_priv_groups) see alerts too: viewer and operator may view them, the
administrator has every alert permission. Existing groups are completed, never emptied."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {"viewer": ["view_alert"], "operator": ["view_alert"], "administrator": None}  # None: all


def add_alert_permissions(apps, schema_editor):
    # Permissions are normally created after `migrate` (post_migrate): create them now to reference them.
    audit = apps.get_app_config("audit")
    audit.models_module = True
    create_permissions(audit, verbosity=0, apps=apps)
    audit.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    alert = Permission.objects.filter(content_type__app_label="audit", content_type__model="alert")
    for name, codenames in ROLES.items():
        group = Group.objects.filter(name=name).first()
        if group is not None:
            group.permissions.add(*(alert if codenames is None else alert.filter(codename__in=codenames)))


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_opsb_alerts_retention"),
        ("tenants", "0004_priv_groups"),
    ]

    operations = [migrations.RunPython(add_alert_permissions, migrations.RunPython.noop)]
