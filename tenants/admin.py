from django.contrib import admin

from tenants.models import FreshBooksAccount, FreshBooksWebhook, JiraSite, Tenant
from tenants.secrets import SecretFieldsForm, masked


class FreshBooksAccountForm(SecretFieldsForm):
    secret_fields = ("access_token", "refresh_token")

    class Meta:
        model = FreshBooksAccount
        fields = "__all__"


class JiraSiteForm(SecretFieldsForm):
    secret_fields = ("api_token", "access_token", "refresh_token", "webhook_secret")

    class Meta:
        model = JiraSite
        fields = "__all__"


class FreshBooksWebhookForm(SecretFieldsForm):
    secret_fields = ("verifier",)

    class Meta:
        model = FreshBooksWebhook
        fields = "__all__"


class FreshBooksAccountInline(admin.TabularInline):
    model = FreshBooksAccount
    fields = ("business_name", "account_id", "business_id", "status", "last_error", "token_expires_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "active", "freshbooks_status", "jira_status", "created_at")
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


@admin.register(FreshBooksAccount)
class FreshBooksAccountAdmin(admin.ModelAdmin):
    form = FreshBooksAccountForm
    list_display = ("__str__", "tenant", "status", "token_expires_at", "rejected_deliveries", "updated_at")
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
class FreshBooksWebhookAdmin(admin.ModelAdmin):
    form = FreshBooksWebhookForm
    list_display = ("event", "callback_id", "account", "verified", "verifier_set", "updated_at")
    list_filter = ("verified", "event", "account__tenant")
    search_fields = ("event", "callback_id", "account__account_id", "account__tenant__name")
    readonly_fields = ("verified_at", "created_at", "updated_at")
    list_select_related = ("account",)

    @admin.display(description="Verifier")
    def verifier_set(self, obj):
        return masked(obj.verifier)


@admin.register(JiraSite)
class JiraSiteAdmin(admin.ModelAdmin):
    form = JiraSiteForm
    list_display = (
        "__str__",
        "tenant",
        "auth_method",
        "deployment",
        "status",
        "webhook_expires_at",
        "updated_at",
    )
    list_filter = ("auth_method", "deployment", "status")
    search_fields = ("base_url", "site_name", "cloud_id", "email", "tenant__name")
    readonly_fields = (
        "uuid",
        "webhook_ids",
        "webhook_expires_at",
        "webhook_refreshed_at",
        "webhook_error",
        "last_refreshed_at",
        "created_at",
        "updated_at",
    )
    list_select_related = ("tenant",)
