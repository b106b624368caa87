import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from fernet_fields import EncryptedTextField


class Tenant(models.Model):
    """One customer of the deployment: a FreshBooks business synced into one Jira site."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    active = models.BooleanField(default=True, help_text="Inactive tenants' deliveries are refused.")
    auto_retry = models.BooleanField(
        default=False,
        help_text="Retry transient Jira failures automatically (safe: every write goes through the ledger).",
    )
    settings = models.JSONField(default=dict, blank=True, help_text="Extra per-tenant options (JSON).")
    # Paused (tenants.pausing): deliveries are still accepted and stored, nothing is sent to Jira.
    paused_at = models.DateTimeField(null=True, blank=True, editable=False, help_text="Paused since.")
    paused_by = models.CharField(max_length=150, blank=True, default="", editable=False)
    pause_note = models.TextField(blank=True, default="", editable=False, help_text="Why it was paused.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("test_connection", "Can test a tenant's connections"),
            ("register_webhooks", "Can register FreshBooks and Jira webhooks (and resend verifications)"),
            ("pause_tenant", "Can pause and resume a tenant's sync to Jira"),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("admin:tenants_tenant_change", args=[self.pk])

    @property
    def paused(self):
        return self.paused_at is not None


class ConnectionStatus(models.TextChoices):
    CONNECTED = "connected", "Connected"
    NEEDS_RECONNECT = "needs_reconnect", "Needs reconnect"
    DISCONNECTED = "disconnected", "Not connected"


class OAuthTokens(models.Model):
    """OAuth 2.0 token pair (encrypted) and connection health, shared by both vendors."""

    access_token = EncryptedTextField(blank=True, default="")
    refresh_token = EncryptedTextField(blank=True, default="")
    token_expires_at = models.DateTimeField(null=True, blank=True)
    scopes = models.TextField(blank=True, default="")
    status = models.CharField(
        max_length=20, choices=ConnectionStatus.choices, default=ConnectionStatus.DISCONNECTED
    )
    last_error = models.TextField(blank=True, default="")
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    token_url = models.CharField(
        max_length=300,
        blank=True,
        default="",
        editable=False,
        help_text="The token endpoint that issued these tokens: they are sent to no other vendor address.",
    )

    class Meta:
        abstract = True


class FreshBooksAccount(OAuthTokens):
    """A FreshBooks business membership connected to a tenant; deliveries are routed by its ids."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="freshbooks_accounts")
    account_id = models.CharField(max_length=64, help_text="Accounting account id, e.g. 6BApk.")
    business_id = models.CharField(max_length=64, help_text="Business id (numeric).")
    business_name = models.CharField(max_length=255, blank=True, default="")
    identity_id = models.CharField(max_length=64, blank=True, default="")
    rejected_deliveries = models.PositiveIntegerField(
        default=0,
        help_text="Deliveries refused for a missing or wrong signature (counted at most once a second).",
    )
    last_rejected_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "FreshBooks account"
        constraints = [
            models.UniqueConstraint(
                fields=["account_id", "business_id"], name="uniq_freshbooks_account_business"
            ),
            # A tenant syncs one FreshBooks business: the ledger's keys and labels are per tenant.
            models.UniqueConstraint(fields=["tenant"], name="one_freshbooks_business_per_tenant"),
        ]

    def __str__(self):
        return f"{self.business_name or self.account_id} ({self.account_id}/{self.business_id})"


class FreshBooksWebhook(models.Model):
    """One FreshBooks callback registration; its verifier is the HMAC secret of its deliveries."""

    account = models.ForeignKey(FreshBooksAccount, on_delete=models.CASCADE, related_name="webhooks")
    callback_id = models.BigIntegerField()
    event = models.CharField(max_length=64)
    uri = models.URLField(max_length=500)
    verifier = EncryptedTextField(blank=True, default="")
    verified = models.BooleanField(default=False)
    verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "FreshBooks webhook"
        constraints = [
            models.UniqueConstraint(fields=["account", "callback_id"], name="uniq_freshbooks_callback"),
        ]

    def __str__(self):
        return f"{self.event} #{self.callback_id}"


class JiraSite(OAuthTokens):
    """The Jira site a tenant writes to: API token (Basic), personal access token (Data Center, Bearer) or
    OAuth 2.0 (3LO) credentials."""

    class Deployment(models.TextChoices):
        CLOUD = "cloud", "Cloud"
        SERVER = "server", "Server / Data Center"

    class AuthMethod(models.TextChoices):
        BASIC = "basic", "Email or user name + API token (Basic)"
        PAT = "pat", "Personal access token (Data Center)"
        OAUTH2 = "oauth2", "OAuth 2.0 (3LO)"

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="jira_site")
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    base_url = models.URLField(
        max_length=300,
        help_text="https://your-site.atlassian.net, a Data Center URL (https://jira.example.com/jira), or for a "
        "scoped API token https://api.atlassian.com/ex/jira/<cloud id>.",
    )
    site_name = models.CharField(max_length=200, blank=True, default="")
    cloud_id = models.CharField(max_length=64, blank=True, default="")
    deployment = models.CharField(max_length=10, choices=Deployment.choices, default=Deployment.CLOUD)
    auth_method = models.CharField(max_length=10, choices=AuthMethod.choices, default=AuthMethod.BASIC)
    email = models.CharField(
        "email or user name",
        max_length=254,
        blank=True,
        default="",
        help_text="The Jira user's email (Cloud) or user name (Server / Data Center); not used with a personal "
        "access token.",
    )
    api_token = EncryptedTextField("API token or personal access token", blank=True, default="")
    credentials_expire_on = models.DateField(
        "token expires on",
        null=True,
        blank=True,
        help_text="When the API token or personal access token expires (Atlassian shows it with the token): "
        "operators are warned 30 and 7 days before.",
    )
    # Jira webhooks: dynamic (OAuth) ids or the admin webhook's id, its secret and expiry.
    webhook_ids = models.JSONField(default=list, blank=True)
    webhook_secret = EncryptedTextField(blank=True, default="")
    webhook_expires_at = models.DateTimeField(null=True, blank=True)
    webhook_refreshed_at = models.DateTimeField(null=True, blank=True)
    webhook_error = models.TextField(blank=True, default="")
    webhook_sync_until = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="A webhook registration holds the site until then."
    )
    field_schemas = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="Jira's schema of each field ({field id: {type, items, custom}}), kept to type custom field values.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Jira site"

    def __str__(self):
        return self.site_name or self.base_url

    @property
    def api_base(self):
        """Root for REST calls: the site itself, or Atlassian's gateway for OAuth 2.0 sites."""
        if self.auth_method == self.AuthMethod.OAUTH2:
            return f"{settings.ATLASSIAN_API_URL}/ex/jira/{self.cloud_id}"
        return self.base_url.rstrip("/")


class ApiToken(models.Model):
    """A staff user's key to the operator API (`/api/v1/`), sent as `Authorization: Token <secret>` (or Bearer).

    Only the SHA-256 digest of the secret is stored; the secret is shown once, when the token is made
    (`ApiToken.issue`). A secret reads `mlc_<prefix>_<random>`: the prefix (8 characters, stored in clear and
    unique) finds the row, the digest of the whole secret is compared in constant time. A revoked or expired
    token, or one whose user is inactive or no longer staff, is refused (tenants.api_tokens)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What it is for, e.g. “nightly replay script”.")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False, help_text="SHA-256 of the secret (hex).")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Refused from then on; empty: never.")
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_by = models.CharField(max_length=150, blank=True, default="", editable=False)

    class Meta:
        verbose_name = "API token"
        ordering = ["-created_at", "-id"]
        permissions = [("manage_api_tokens", "Can see, make and revoke the API tokens of other users")]

    def __str__(self):
        return f"{self.name} (mlc_{self.prefix}_…)"
