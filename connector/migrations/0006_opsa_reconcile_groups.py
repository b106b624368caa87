"""The suggested groups (tenants 0004_priv_groups) learn the reconcile status, the failed-events list and the
alerts (audit 0003_opsb_alerts_retention, which came after the groups): viewers and operators see them, operators may also run "Reconcile now", administrators hold everything.
Only existing groups of those names are completed; nothing is removed."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEW = [("connector", "view_reconcilestate"), ("audit", "view_failedevent"), ("audit", "view_alert")]
ROLES = {
    "viewer": VIEW,
    "operator": [*VIEW, ("connector", "reconcile_now")],
    "administrator": [
        *VIEW,
        ("connector", "reconcile_now"),
        ("connector", "change_reconcilestate"),
        ("connector", "add_reconcilestate"),
        ("connector", "delete_reconcilestate"),
        ("audit", "add_failedevent"),
        ("audit", "change_failedevent"),
        ("audit", "delete_failedevent"),
    ],
}


def complete_groups(apps, schema_editor):
    # Permissions are normally created after `migrate` (post_migrate): create them now to reference them.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, pairs in ROLES.items():
        group = Group.objects.filter(name=name).first()
        if group is None:
            continue
        for app_label, codename in pairs:
            group.permissions.add(
                *Permission.objects.filter(content_type__app_label=app_label, codename=codename)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("connector", "0005_opsa_reconcile_state"),
        ("audit", "0004_opsa_reconcile_replay_rollback"),
        ("tenants", "0004_priv_groups"),
    ]

    operations = [migrations.RunPython(complete_groups, migrations.RunPython.noop)]
