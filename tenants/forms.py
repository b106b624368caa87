"""The tenants app's admin forms: the tenant (with the project key of its default mappings), and the
connections, whose secrets are write-only (SecretFieldsForm)."""

from django import forms

from connector.jira.keys import is_project_key
from tenants.checks import CheckError, probe_jira_site
from tenants.models import ConnectionStatus, FreshBooksAccount, FreshBooksWebhook, JiraSite, Tenant
from tenants.secret_fields import SecretFieldsForm


class FreshBooksAccountForm(SecretFieldsForm):
    secret_fields = ("access_token", "refresh_token")

    class Meta:
        model = FreshBooksAccount
        fields = "__all__"


TOKEN_METHODS = (JiraSite.AuthMethod.BASIC, JiraSite.AuthMethod.PAT)


class JiraSiteForm(SecretFieldsForm):
    """A site signed in with a token: Basic (email, or user name on Server / Data Center, + API token) or a Data
    Center personal access token (Bearer). Checked on save (serverInfo sets Cloud or Server, myself proves the
    credentials) unless "Save without checking" was pressed; a new token is checked too, and a site marked
    "Needs reconnect" is connected again by it. A new OAuth 2.0 site is not saved here: the admin sends the
    operator to Connect Jira instead (see JiraSiteAdmin.add_view)."""

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
            "auth_method": "Email or user name + API token (Basic): Cloud API tokens, or a Server / Data Center "
            "user name and password. Personal access token: Data Center 8.14+ (no user name). OAuth 2.0: saving "
            "takes you to Connect Jira, to sign in at Atlassian (nothing else to fill in).",
            "email": "The Jira user's email (Cloud) or user name (Server / Data Center); empty for a personal "
            "access token.",
        }

    def clean(self):
        """A new token site, one whose URL, user or sign-in method changes, or one given a new token is checked:
        serverInfo sets the deployment and myself proves the credentials.

        The stored token is only ever sent where it was checked: changing the URL, the user or the sign-in
        method needs the token typed again.
        """
        token_typed = bool(self.cleaned_data.get("api_token"))
        cleaned = super().clean()
        method = cleaned.get("auth_method", self.instance.auth_method)
        if method not in TOKEN_METHODS or self.errors:
            return cleaned
        base_url, email, token = (cleaned.get(k) or "" for k in ("base_url", "email", "api_token"))
        if method == JiraSite.AuthMethod.PAT:
            email = cleaned["email"] = ""
        instance = self.instance
        moved = instance.pk and (
            base_url.rstrip("/") != instance.base_url.rstrip("/")
            or email != instance.email
            or instance.auth_method != method
        )
        if moved and not token_typed:
            raise forms.ValidationError(
                "Changing the URL, the user or the sign-in method needs the token: type it again."
            )
        if not token or (method == JiraSite.AuthMethod.BASIC and not email):
            raise forms.ValidationError(
                "A personal-access-token site needs the token."
                if method == JiraSite.AuthMethod.PAT
                else "An API-token site needs the email (or user name) and the API token."
            )
        site = self.instance  # status and deployment are not form fields: set them on the instance
        if instance.pk and not moved and not token_typed:
            return cleaned
        if self.skip_check:
            site.status = ConnectionStatus.DISCONNECTED
            site.last_error = "Saved without checking: run Test connection on the tenant."
            return cleaned
        try:
            deployment, _user = probe_jira_site(base_url, email, token, method)
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
        if key and not is_project_key(key):
            raise forms.ValidationError(
                "A Jira project key is letters, digits and underscores starting with a letter, e.g. FIN or FIN_OPS."
            )
        return key


class FreshBooksWebhookForm(SecretFieldsForm):
    secret_fields = ("verifier",)

    class Meta:
        model = FreshBooksWebhook
        fields = "__all__"
