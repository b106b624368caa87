from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.views.decorators.http import require_POST

from connector.defaults import create_default_mappings, create_default_worklog_rule
from connector.errors import VendorError
from connector.freshbooks import registration as fb_registration
from connector.jira import registration as jira_registration
from tenants import token_admin  # noqa: F401 - the API tokens (made and revoked by their users)
from tenants.checks import check_tenant
from tenants.disconnect_admin import PERMISSION as DISCONNECT_PERMISSION
from tenants.disconnect_admin import DisconnectAdmin
from tenants.forms import FreshBooksAccountForm, FreshBooksWebhookForm, JiraSiteForm, TenantForm
from tenants.models import FreshBooksAccount, FreshBooksWebhook, JiraSite, Tenant
from tenants.pause_admin import PauseAdmin
from tenants.secret_fields import SecretFieldsAdmin, VendorCheckedAdmin, masked, masked_display
from tenants.setup import connect_blocker
from tenants.views import may_connect


class FreshBooksAccountInline(admin.TabularInline):
    model = FreshBooksAccount
    fields = (
        "business_name",
        "account_id",
        "business_id",
        "status",
        "last_error",
        "token_expires_at",
        "rejected_deliveries",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


class OperationsPermissions:
    """The dedicated permissions of the connection actions (see the permission matrix in docs/connecting.md)."""

    def has_test_connection_permission(self, request):
        return request.user.has_perm("tenants.test_connection")

    def has_register_webhooks_permission(self, request):
        return request.user.has_perm("tenants.register_webhooks")


@admin.action(description="Test connection", permissions=["test_connection"])
def test_connection(modeladmin, request, queryset):
    for tenant in queryset:
        results = check_tenant(tenant)
        failed = [r for r in results if not r.ok]
        if failed:
            details = "; ".join(f"{r.side}: {r.detail}" for r in failed)
            modeladmin.message_user(
                request, f"{tenant}: {len(failed)} check(s) failed: {details}", messages.ERROR
            )
        else:
            details = "; ".join(f"{r.side}: {r.detail}" for r in results)
            modeladmin.message_user(request, f"{tenant}: all checks passed ({details})", messages.SUCCESS)


@admin.action(description="Register FreshBooks webhooks", permissions=["register_webhooks"])
def register_freshbooks_webhooks(modeladmin, request, queryset):
    """One callback per needed event (idempotent); see `manage.py register_webhooks`."""
    actor = f"admin:{request.user.get_username()}"
    for tenant in queryset:
        accounts = list(tenant.freshbooks_accounts.all())
        if not tenant.active or not accounts:
            reason = "inactive" if not tenant.active else "no FreshBooks account connected"
            modeladmin.message_user(request, f"{tenant}: skipped ({reason}).", messages.WARNING)
        for account in accounts if tenant.active else []:
            try:
                result = fb_registration.register(account, actor=actor)
            except VendorError as exc:
                modeladmin.message_user(request, f"{tenant} {account.account_id}: {exc}", messages.ERROR)
            else:
                modeladmin.message_user(
                    request, f"{tenant} {account.account_id}: {result.summary()}", messages.SUCCESS
                )


@admin.register(Tenant)
class TenantAdmin(OperationsPermissions, PauseAdmin, DisconnectAdmin, admin.ModelAdmin):
    form = TenantForm
    actions = [test_connection, register_freshbooks_webhooks, "pause_selected", "resume_selected"]
    list_display = ("name", "slug", "active", "sync_state", "freshbooks_status", "jira_status", "created_at")
    list_filter = ("active",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("created_at", "updated_at")
    inlines = [FreshBooksAccountInline]

    @admin.display(description="FreshBooks")
    def freshbooks_status(self, obj):
        accounts = list(obj.freshbooks_accounts.all())
        if not accounts:
            return "not connected"
        return ", ".join(f"{a.business_name or a.account_id}: {a.get_status_display()}" for a in accounts)

    @admin.display(description="Jira")
    def jira_status(self, obj):
        site = getattr(obj, "jira_site", None)
        return f"{site}: {site.get_status_display()}" if site else "not connected"

    def get_queryset(self, request):
        return (
            super().get_queryset(request).select_related("jira_site").prefetch_related("freshbooks_accounts")
        )

    CONNECT = (("freshbooks", "Connect FreshBooks"), ("jira", "Connect Jira (OAuth)"))

    def render_change_form(self, request, context, *args, obj=None, **kwargs):
        if obj is not None:  # the Connect buttons (for users who may use them; disabled with the reason)
            context["connect_buttons"] = [
                (vendor, label, f"{vendor}-oauth-connect", connect_blocker(vendor))
                for vendor, label in self.CONNECT
                if may_connect(request.user, vendor, obj)
            ]
            context["can_register_webhooks"] = (
                self.has_register_webhooks_permission(request) and obj.freshbooks_accounts.exists()
            )
            context.update(self.pause_context(request, obj))
            context["can_disconnect"] = request.user.has_perm(DISCONNECT_PERMISSION)
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        # The project key only seeds the default mappings of a new tenant; mappings are edited after that.
        return [f for f in fields if f not in ("jira_project_key", "worklog_from_note")] if obj else fields

    def response_add(self, request, obj, post_url_continue=None):
        """A new tenant lands on its own page (its next step: connect), unless "add another" was asked."""
        if "_addanother" not in request.POST and IS_POPUP_VAR not in request.POST:
            request.POST = request.POST.copy()
            request.POST["_continue"] = "1"
        return super().response_add(request, obj, post_url_continue)

    def get_urls(self):
        view = self.admin_site.admin_view(require_POST(self.register_webhooks_view))
        return [
            path("<path:object_id>/register-webhooks/", view, name="tenants_tenant_register_webhooks"),
            *self.pause_urls(),
            *self.disconnect_urls(),
            *super().get_urls(),
        ]

    def register_webhooks_view(self, request, object_id):
        """POST: register the tenant's FreshBooks callbacks and Jira webhooks, then back to its page."""
        tenant = get_object_or_404(Tenant, pk=object_id)
        if not self.has_register_webhooks_permission(request):
            raise PermissionDenied
        register_freshbooks_webhooks(self, request, Tenant.objects.filter(pk=tenant.pk))
        site = getattr(tenant, "jira_site", None)
        if site is not None:
            if jira_registration.register(site, actor=request.user.get_username()):
                self.message_user(request, f"{site}: Jira webhooks registered.", messages.SUCCESS)
            else:
                self.message_user(
                    request, f"{site}: Jira webhooks not registered: {site.webhook_error}", messages.WARNING
                )
        return redirect("admin:tenants_tenant_change", tenant.pk)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)  # the admin wraps the whole view in one transaction
        key = form.cleaned_data.get("jira_project_key")
        if not change and key:
            created = create_default_mappings(obj, key)
            self.message_user(
                request, f"Created {len(created)} default mappings to project {key}.", messages.INFO
            )
        if not change and form.cleaned_data.get("worklog_from_note") and create_default_worklog_rule(obj):
            self.message_user(
                request, "Created the worklog rule “Jira issue key in the entry's note”.", messages.INFO
            )


@admin.register(FreshBooksAccount)
class FreshBooksAccountAdmin(SecretFieldsAdmin, admin.ModelAdmin):
    form = FreshBooksAccountForm
    secret_fields = FreshBooksAccountForm.secret_fields
    access_token_masked = masked_display("access_token", "Access token")
    refresh_token_masked = masked_display("refresh_token", "Refresh token")
    list_display = (
        "__str__",
        "tenant",
        "status",
        "token_expires_at",
        "rejected_deliveries",
        "last_rejected_at",
        "updated_at",
    )
    list_filter = ("status", "tenant")
    search_fields = ("account_id", "business_id", "business_name", "tenant__name")
    readonly_fields = (
        "rejected_deliveries",
        "last_rejected_at",
        "last_refreshed_at",
        "created_at",
        "updated_at",
    )
    list_select_related = ("tenant",)


@admin.register(FreshBooksWebhook)
class FreshBooksWebhookAdmin(OperationsPermissions, SecretFieldsAdmin, admin.ModelAdmin):
    form = FreshBooksWebhookForm
    secret_fields = FreshBooksWebhookForm.secret_fields
    verifier_masked = masked_display("verifier", "Verifier")
    list_display = ("event", "callback_id", "account", "verified", "verifier_set", "updated_at")
    list_filter = ("verified", "event", "account__tenant")
    search_fields = ("event", "callback_id", "account__account_id", "account__tenant__name")
    readonly_fields = ("verified_at", "created_at", "updated_at")
    list_select_related = ("account",)
    actions = ["resend_verification"]

    @admin.display(description="Verifier")
    def verifier_set(self, obj):
        return masked(obj.verifier)

    @admin.action(description="Resend verification", permissions=["register_webhooks"])
    def resend_verification(self, request, queryset):
        """Ask FreshBooks to send the callback.verify delivery again for unverified callbacks."""
        sent, skipped = 0, 0
        for hook in queryset.select_related("account"):
            try:
                if fb_registration.resend_verification(hook, actor=f"admin:{request.user.get_username()}"):
                    sent += 1
                else:
                    skipped += 1
            except VendorError as exc:
                self.message_user(request, f"{hook}: {exc}", messages.ERROR)
        if sent:
            self.message_user(
                request, f"Asked FreshBooks to resend {sent} verification(s).", messages.SUCCESS
            )
        if skipped:
            self.message_user(request, f"{skipped} callback(s) already verified: skipped.", messages.INFO)


class JiraSiteFields:
    """The Jira site page shows what the operator types for an API-token site; everything else is set by the
    checks, the OAuth flow or the webhook registration, and only shown (below SecretFieldsAdmin's masking)."""

    TYPED = ("tenant", "auth_method", "base_url", "email", "api_token", "credentials_expire_on")
    SHOWN = (
        "site_name",
        "deployment",
        "status",
        "last_error",
        "cloud_id",
        "scopes",
        "token_expires_at",
        "last_refreshed_at",
        "uuid",
        "webhook_ids",
        "webhook_expires_at",
        "webhook_refreshed_at",
        "webhook_error",
        "created_at",
        "updated_at",
    )

    def get_fields(self, request, obj=None):
        if obj is None:
            return self.TYPED
        if obj.auth_method == JiraSite.AuthMethod.OAUTH2:
            return ("tenant", "auth_method", "base_url", *self.SHOWN)
        return (*self.TYPED, *self.SHOWN)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        if obj.auth_method == JiraSite.AuthMethod.OAUTH2:  # reconnect through Connect Jira instead
            return ("tenant", "auth_method", "base_url", *self.SHOWN)
        return ("auth_method", *self.SHOWN)


@admin.register(JiraSite)
class JiraSiteAdmin(
    OperationsPermissions, VendorCheckedAdmin, SecretFieldsAdmin, JiraSiteFields, admin.ModelAdmin
):
    form = JiraSiteForm
    change_form_template = "admin/tenants/jirasite/change_form.html"
    secret_fields = JiraSiteForm.secret_fields
    api_token_masked = masked_display("api_token", "API token")
    access_token_masked = masked_display("access_token", "Access token")
    refresh_token_masked = masked_display("refresh_token", "Refresh token")
    webhook_secret_masked = masked_display("webhook_secret", "Webhook secret")
    list_display = (
        "__str__",
        "tenant",
        "auth_method",
        "deployment",
        "status",
        "webhook_status",
        "webhook_expires_at",
        "updated_at",
    )
    list_filter = ("auth_method", "deployment", "status")
    search_fields = ("base_url", "site_name", "cloud_id", "email", "tenant__name")
    list_select_related = ("tenant",)
    actions = ["register_jira_webhooks", "refresh_jira_webhooks"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        form.skip_check = "_skip_check" in request.POST
        return form

    def add_view(self, request, form_url="", extra_context=None):
        """Choosing OAuth 2.0 leads to Connect Jira for the chosen tenant instead of saving an empty site."""
        if request.method == "POST" and request.POST.get("auth_method") == JiraSite.AuthMethod.OAUTH2:
            tenant = Tenant.objects.filter(pk=request.POST.get("tenant") or None).first()
            if tenant is not None and self.has_add_permission(request):
                return redirect("jira-oauth-connect", tenant.slug)
        return super().add_view(request, form_url, extra_context)

    @admin.display(description="Webhooks")
    def webhook_status(self, obj):
        if obj.webhook_error:
            return f"Failing: {obj.webhook_error[:120]}"
        if not obj.webhook_ids or obj.webhook_refreshed_at is None:
            return "Not registered"
        return f"OK (last good refresh {obj.webhook_refreshed_at:%Y-%m-%d %H:%M} UTC)"

    def _webhooks(self, request, queryset, verb, **kwargs):
        run = jira_registration.register if verb == "registered" else jira_registration.refresh
        for site in queryset.select_related("tenant"):
            if run(site, actor=request.user.get_username(), **kwargs):
                self.message_user(
                    request,
                    f"{site}: webhooks {verb} (ids {', '.join(map(str, site.webhook_ids))}).",
                    messages.SUCCESS,
                )
            else:
                self.message_user(request, f"{site}: {site.webhook_error}", messages.ERROR)

    @admin.action(description="Register Jira webhooks", permissions=["register_webhooks"])
    def register_jira_webhooks(self, request, queryset):
        self._webhooks(request, queryset, "registered")

    @admin.action(description="Refresh Jira webhooks", permissions=["register_webhooks"])
    def refresh_jira_webhooks(self, request, queryset):
        self._webhooks(request, queryset, "refreshed", force=True)
