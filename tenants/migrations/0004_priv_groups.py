"""Suggested groups: viewer, operator, administrator (see the permission matrix in docs/connecting.md).

Existing groups of the same names are completed, never emptied: an operator's own changes stay.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

APPS = ("tenants", "connector", "audit", "django_q")
# (app, model) pairs every role may view.
VIEWABLE = [
    ("tenants", "tenant"),
    ("tenants", "freshbooksaccount"),
    ("tenants", "freshbookswebhook"),
    ("tenants", "jirasite"),
    ("connector", "issuemapping"),
    ("connector", "worklogrule"),
    ("connector", "jirausermatch"),
    ("connector", "link"),
    ("audit", "event"),
    ("audit", "attempt"),
]
OPERATOR_EXTRA = [
    ("audit", "replay_event"),
    ("audit", "rollback_event"),
    ("audit", "view_sensitive_data"),
    ("tenants", "test_connection"),
    ("tenants", "register_webhooks"),
]


def permissions_of(apps, pairs):
    Permission = apps.get_model("auth", "Permission")
    found = []
    for app_label, codename in pairs:
        found.extend(Permission.objects.filter(content_type__app_label=app_label, codename=codename))
    return found


def create_groups(apps, schema_editor):
    # Permissions are normally created after `migrate` (post_migrate): create them now to reference them.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view = permissions_of(apps, [(app, f"view_{model}") for app, model in VIEWABLE])
    roles = {
        "viewer": view,
        "operator": view + permissions_of(apps, OPERATOR_EXTRA),
        "administrator": list(Permission.objects.filter(content_type__app_label__in=APPS)),
    }
    for name, permissions in roles.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("tenants", "0003_priv_permissions"),
        ("connector", "0003_priv_link_jira_changed_at"),
        ("audit", "0002_priv_permissions_replay_hash"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
