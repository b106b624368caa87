"""Pause and resume in the tenant admin (tenants.pausing): list actions, the tenant page's Sync panel and its
buttons, all behind the "Can pause and resume a tenant's sync to Jira" permission."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.views.decorators.http import require_POST

from tenants import pausing
from tenants.models import Tenant


def _actor(request):
    return f"admin:{request.user.get_username()}"


def _pause(modeladmin, request, tenants, note=""):
    for tenant in tenants:
        if pausing.pause(tenant, actor=_actor(request), note=note):
            modeladmin.log_change(request, tenant, f"Paused the sync{f': {note}' if note else ''}")
            modeladmin.message_user(
                request,
                f"{tenant}: paused. Deliveries are still received and stored; nothing is sent to Jira until "
                "it is resumed.",
                messages.SUCCESS,
            )
        else:
            modeladmin.message_user(request, f"{tenant}: already paused.", messages.INFO)


def _resume(modeladmin, request, tenants):
    for tenant in tenants:
        queued = pausing.resume(tenant, actor=_actor(request))
        if queued is None:
            modeladmin.message_user(request, f"{tenant}: not paused.", messages.INFO)
            continue
        modeladmin.log_change(request, tenant, f"Resumed the sync ({queued} held event(s) queued)")
        modeladmin.message_user(
            request,
            f"{tenant}: resumed; {queued} held event(s) queued in the order received.",
            messages.SUCCESS,
        )


class PauseAdmin:
    """Mixed into TenantAdmin (before admin.ModelAdmin)."""

    def has_pause_tenant_permission(self, request):
        return request.user.has_perm("tenants.pause_tenant")

    @admin.action(
        description="Pause sync (store deliveries, send nothing to Jira)", permissions=["pause_tenant"]
    )
    def pause_selected(self, request, queryset):
        _pause(self, request, queryset)

    @admin.action(description="Resume sync (process held events in order)", permissions=["pause_tenant"])
    def resume_selected(self, request, queryset):
        _resume(self, request, queryset)

    @admin.display(description="Sync")
    def sync_state(self, obj):
        return f"paused since {obj.paused_at:%Y-%m-%d %H:%M}" if obj.paused else "running"

    def pause_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/pause/", wrap(require_POST(self.pause_view)), name="tenants_tenant_pause"),
            path(
                "<path:object_id>/resume/", wrap(require_POST(self.resume_view)), name="tenants_tenant_resume"
            ),
        ]

    def pause_view(self, request, object_id):
        """POST (note=…): pause this tenant, then back to its page."""
        tenant = get_object_or_404(Tenant, pk=object_id)
        if not self.has_pause_tenant_permission(request):
            raise PermissionDenied
        _pause(self, request, [tenant], note=request.POST.get("note", "")[: pausing.MAX_NOTE])
        return redirect("admin:tenants_tenant_change", tenant.pk)

    def resume_view(self, request, object_id):
        """POST: resume this tenant, then back to its page."""
        tenant = get_object_or_404(Tenant, pk=object_id)
        if not self.has_pause_tenant_permission(request):
            raise PermissionDenied
        _resume(self, request, [tenant])
        return redirect("admin:tenants_tenant_change", tenant.pk)

    def pause_context(self, request, obj):
        """The tenant page's Sync panel: its state in words, and whether the buttons are offered."""
        return {"sync_status": pausing.status(obj), "can_pause": self.has_pause_tenant_permission(request)}
