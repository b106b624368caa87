"""API tokens in the admin: each staff user makes and revokes their own; the secret is shown once, on the page
that answers the "Save" (never stored, never put in a message or the session). Users holding
`tenants.manage_api_tokens` (administrators) see every user's tokens and may make one for any staff user."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.template.response import TemplateResponse
from django.utils import timezone

from tenants.api_tokens import revoke, save_new
from tenants.models import ApiToken

MANAGE = "tenants.manage_api_tokens"


class ApiTokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ("user", "name", "expires_at")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "user" in self.fields:
            self.fields["user"].queryset = get_user_model().objects.filter(is_active=True, is_staff=True)
            self.fields["user"].help_text = "The staff user the token acts as (with that user's permissions)."

    def clean_expires_at(self):
        value = self.cleaned_data.get("expires_at")
        if value is not None and value <= timezone.now():
            raise forms.ValidationError("Choose a time in the future (or leave it empty: never expires).")
        return value


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenForm
    list_display = ("name", "user", "shown_prefix", "state", "created_at", "expires_at", "last_used_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "user__username")
    list_select_related = ("user",)
    actions = ["revoke_selected"]
    SHOWN = (
        "user",
        "name",
        "shown_prefix",
        "state",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    )

    def manages_all(self, request):
        return request.user.has_perm(MANAGE)

    def get_queryset(self, request):
        tokens = super().get_queryset(request)
        return tokens if self.manages_all(request) else tokens.filter(user=request.user)

    def get_fields(self, request, obj=None):
        if obj is not None:
            return self.SHOWN
        return ("user", "name", "expires_at") if self.manages_all(request) else ("name", "expires_at")

    def get_readonly_fields(self, request, obj=None):
        return self.SHOWN if obj is not None else ()

    @admin.display(description="Token")
    def shown_prefix(self, obj):
        return f"mlc_{obj.prefix}_…"

    @admin.display(description="State")
    def state(self, obj):
        if obj.revoked_at:
            return f"revoked by {obj.revoked_by}" if obj.revoked_by else "revoked"
        if obj.expires_at and obj.expires_at <= timezone.now():
            return "expired"
        return "active"

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke_selected(self, request, queryset):
        count = revoke(queryset, actor=f"admin:{request.user.get_username()}")
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)

    def save_model(self, request, obj, form, change):
        if change:
            return  # every field of a made token is read-only
        if not self.manages_all(request) or obj.user_id is None:
            obj.user = request.user
        request.api_token_secret = save_new(obj)

    def response_add(self, request, obj, post_url_continue=None):
        """The one page that shows the secret; reloading it does not show it again (the POST made it)."""
        context = {
            **self.admin_site.each_context(request),
            "title": "API token made",
            "opts": self.model._meta,
            "token": obj,
            "secret": request.api_token_secret,
            "api_url": f"{settings.PUBLIC_BASE_URL}/api/v1/",
        }
        response = TemplateResponse(request, "admin/tenants/apitoken/created.html", context)
        response["Cache-Control"] = "no-store"
        return response
