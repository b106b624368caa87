"""The tenants app's admin forms: the tenant (with the project key of its default mappings), and the
connections, whose secrets are write-only (SecretFieldsForm)."""

import re

from django import forms

from tenants.checks import CheckError, probe_jira_site
from tenants.models import ConnectionStatus, FreshBooksAccount, FreshBooksWebhook, JiraSite, Tenant
from tenants.secret_fields import SecretFieldsForm


class FreshBooksAccountForm(SecretFieldsForm):
    secret_fields = ("access_token", "refresh_token")

    class Meta:
        model = FreshBooksAccount
        fields = "__all__"


class JiraSiteForm(SecretFieldsForm):
    """An API-token site: tenant, URL, email and token, checked on save (serverInfo sets Cloud or Server,
    myself proves the credentials) unless "Save without checking" was pressed. A new OAuth 2.0 site is not
    saved here: the admin sends the operator to Connect Jira instead (see JiraSiteAdmin.add_view)."""

    secret_fields = ("api_token", "access_token", "refresh_token", "webhook_secret")
    skip_check = False  # set by JiraSiteAdmin.get_form from the button pressed

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "api_token" in self.fields:
            # A failed check keeps what the operator typed (the initial value is "": the stored token is
            # never rendered).
            self.fields["api_token"].widget.render_value = True

    class Meta:
        model = JiraSite
        fields = "__all__"
        help_texts = {
            "auth_method": "Email + API token: fill in the URL, email and token below. OAuth 2.0: saving takes "
            "you to Connect Jira, to sign in at Atlassian (nothing else to fill in).",
            "email": "The Jira user's email (Cloud) or user name (Server / Data Center).",
        }

    def clean(self):
        """A new API-token site, or one whose URL or email changes, is checked: serverInfo sets the deployment
        and myself proves the credentials. (Run "Test connection" on the tenant after replacing only a token.)

        The stored token is only ever sent where it was checked: changing the URL, the email or the sign-in
        method needs the API token typed again.
        """
        token_typed = bool(self.cleaned_data.get("api_token"))
        cleaned = super().clean()
        if cleaned.get("auth_method", self.instance.auth_method) != JiraSite.AuthMethod.BASIC or self.errors:
            return cleaned
        base_url, email, token = (cleaned.get(k) or "" for k in ("base_url", "email", "api_token"))
        instance = self.instance
        moved = instance.pk and (
            base_url.rstrip("/") != instance.base_url.rstrip("/")
            or email != instance.email
            or instance.auth_method != JiraSite.AuthMethod.BASIC
        )
        if moved and not token_typed:
            raise forms.ValidationError(
                "Changing the URL, the email or the sign-in method needs the API token: type it again."
            )
        if not (email and token):
            raise forms.ValidationError("An API-token site needs the email (or user name) and the API token.")
        site = self.instance  # status and deployment are not form fields: set them on the instance
        if instance.pk and not moved:
            return cleaned
        if self.skip_check:
            site.status = ConnectionStatus.DISCONNECTED
            site.last_error = "Saved without checking: run Test connection on the tenant."
            return cleaned
        try:
            deployment, _user = probe_jira_site(base_url, email, token)
        except CheckError as exc:
            raise forms.ValidationError(
                f"{exc} Check the URL and the credentials, or use “Save without checking”."
            ) from exc
        site.deployment, site.status, site.last_error = deployment, ConnectionStatus.CONNECTED, ""
        return cleaned


class TenantForm(forms.ModelForm):
    jira_project_key = forms.CharField(
        required=False,
        max_length=32,
        label="Jira project key",
        help_text="Creates the default mappings (invoice, bill, payments, expense) to this project, e.g. FIN.",
    )
    worklog_from_note = forms.BooleanField(
        required=False,
        initial=True,
        label="Log time entries on the Jira issue their note names",
        help_text="Creates the worklog rule “Jira issue key in the entry's note”: a time entry whose note names an "
        "existing issue (e.g. “Call about FIN-7”) becomes a worklog on it.",
    )

    class Meta:
        model = Tenant
        fields = ("name", "slug", "active", "auto_retry", "settings")

    def clean_jira_project_key(self):
        key = self.cleaned_data.get("jira_project_key", "").strip().upper()
        if key and not re.fullmatch(r"[A-Z][A-Z0-9_]{0,31}", key):
            raise forms.ValidationError(
                "A Jira project key is letters and digits starting with a letter, e.g. FIN."
            )
        return key


class FreshBooksWebhookForm(SecretFieldsForm):
    secret_fields = ("verifier",)

    class Meta:
        model = FreshBooksWebhook
        fields = "__all__"
