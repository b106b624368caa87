"""The admin's permission matrix in DRF permission classes (see the README's permission matrix; the suggested
groups viewer / operator / administrator come from tenants 0004_priv_groups and connector 0006).

Every endpoint needs an active staff user. Reads need the model's view permission (as the admin's lists and
pages do); each action needs the same permission as its admin action: replay `audit.replay_event`, rollback
`audit.rollback_event`, reconcile now `connector.reconcile_now`, pause and resume `tenants.pause_tenant`. Decrypted payloads, records and bodies are
shown only with `audit.view_sensitive_data` (connector.api.serializers), attempts only with `audit.view_attempt`.
"""

from rest_framework.permissions import BasePermission, DjangoModelPermissions, IsAdminUser

SENSITIVE = "audit.view_sensitive_data"


class ModelViewPermissions(DjangoModelPermissions):
    """GET and HEAD need the model's view permission (DRF's own map asks none for reads)."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }


class ActionPermission(BasePermission):
    """An admin action's permissions (`perms`), on top of viewing what it acts on."""

    perms: tuple[str, ...] = ()

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.has_perms(self.perms))


class CanReplay(ActionPermission):
    perms = ("audit.view_event", "audit.replay_event")


class CanRollback(ActionPermission):
    perms = ("audit.view_event", "audit.rollback_event")


class CanReconcile(ActionPermission):
    perms = ("tenants.view_tenant", "connector.reconcile_now")


class CanPause(ActionPermission):
    perms = ("tenants.view_tenant", "tenants.pause_tenant")


READ = [IsAdminUser, ModelViewPermissions]
STAFF = [IsAdminUser]


def needs(permission):
    """The permission classes of an action endpoint: a staff user holding `permission`'s perms."""
    return [IsAdminUser, permission]
