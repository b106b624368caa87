"""OAuth 2.0 providers as small declarative classes (URLs, scopes, extra parameters), on requests-oauthlib."""

import os

from django.conf import settings
from requests_oauthlib import OAuth2Session

# Vendors may grant a different (e.g. reordered or narrower) scope than requested: record what they grant
# instead of failing the exchange; the connection checks report missing permissions.
os.environ.setdefault("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")


# OAuth error codes that say "try again later" (RFC 6749 §4.1.2.1, §5.2 as vendors use them).
TRANSIENT_ERRORS = {"temporarily_unavailable", "server_error"}


class TokenRefused(Exception):
    """The token endpoint refused the grant for good: an operator must connect again. `status` (HTTP), `error`
    (the OAuth error code, e.g. invalid_grant, unauthorized_client, invalid_client, access_denied) and
    `description` (the vendor's error_description)."""

    def __init__(self, status, error, description=""):
        super().__init__(f"{error}: {description}" if description else error)
        self.status, self.error, self.description = status, error, description


def refusal(response):
    """TokenRefused when a token-endpoint answer is a permanent refusal, else None.

    Permanent: a 4xx (not 408/429) whose JSON body carries an OAuth ``error`` other than TRANSIENT_ERRORS.
    Atlassian answers a dead refresh token with 403 unauthorized_client ("refresh_token is invalid"),
    FreshBooks and most others with 400 invalid_grant; a revoked app client gets 401 invalid_client.
    """
    if not 400 <= response.status_code < 500 or response.status_code in (408, 429):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, str) or not error.strip() or error in TRANSIENT_ERRORS:
        return None
    return TokenRefused(response.status_code, error, str(body.get("error_description") or "").strip())


class OAuthProvider:
    """A provider is declared by class attributes; URLs and credentials are read from settings at call time
    (tests point the base URLs at loopback fakes): `authorize = ("SETTING", "/path")`, likewise `token`."""

    name = ""
    scopes: list[str] = []
    extra_authorize_params: dict[str, str] = {}
    callback_url_name = ""
    authorize: tuple[str, str] = ("", "")
    token: tuple[str, str] = ("", "")
    client_id_setting = ""
    client_secret_setting = ""

    @property
    def authorize_url(self):
        base, path = self.authorize
        return getattr(settings, base) + path

    @property
    def token_url(self):
        base, path = self.token
        return getattr(settings, base) + path

    @property
    def client_id(self):
        return getattr(settings, self.client_id_setting)

    @property
    def client_secret(self):
        return getattr(settings, self.client_secret_setting)

    def redirect_uri(self):
        from django.urls import reverse

        return settings.PUBLIC_BASE_URL + reverse(self.callback_url_name)

    def session(self, state=None, token=None):
        return OAuth2Session(
            self.client_id, scope=self.scopes, redirect_uri=self.redirect_uri(), state=state, token=token
        )

    def authorization_url(self, state):
        url, _ = self.session(state=state).authorization_url(
            self.authorize_url, **self.extra_authorize_params
        )
        return url

    def fetch_token(self, code):
        return self.session().fetch_token(
            self.token_url,
            code=code,
            client_secret=self.client_secret,
            include_client_id=True,
            timeout=settings.HTTP_TIMEOUT,
        )

    def refresh(self, refresh_token):
        """Exchange a refresh token for a new token dict.

        Raises TokenRefused when the token endpoint refuses the grant for good (see `refusal`); anything
        else that fails (network, 5xx, 429, temporarily_unavailable, an odd answer) raises as it comes
        (requests or oauthlib exceptions): worth trying again later.
        """
        session = self.session()

        def check(response):
            refused = refusal(response)
            if refused is not None:
                raise refused
            return response

        session.register_compliance_hook("refresh_token_response", check)
        return session.refresh_token(
            self.token_url,
            refresh_token=refresh_token,
            client_id=self.client_id,
            client_secret=self.client_secret,
            timeout=settings.HTTP_TIMEOUT,
        )


class FreshBooksProvider(OAuthProvider):
    name = "freshbooks"
    callback_url_name = "freshbooks-oauth-callback"
    # Read-only: the connector never writes to FreshBooks.
    scopes = [
        "user:profile:read",
        "user:invoices:read",
        "user:bills:read",
        "user:bill_vendors:read",
        "user:payments:read",
        "user:expenses:read",
        "user:clients:read",
        "user:time_entries:read",
        "user:projects:read",
        "user:billable_items:read",
    ]

    authorize = ("FRESHBOOKS_AUTH_URL", "/oauth/authorize")
    token = ("FRESHBOOKS_API_URL", "/auth/oauth/token")
    client_id_setting, client_secret_setting = "FRESHBOOKS_CLIENT_ID", "FRESHBOOKS_CLIENT_SECRET"


class AtlassianProvider(OAuthProvider):
    name = "atlassian"
    callback_url_name = "jira-oauth-callback"
    scopes = ["read:jira-work", "write:jira-work", "read:jira-user", "manage:jira-webhook", "offline_access"]
    extra_authorize_params = {"audience": "api.atlassian.com", "prompt": "consent"}

    authorize = ("ATLASSIAN_AUTH_URL", "/authorize")
    token = ("ATLASSIAN_AUTH_URL", "/oauth/token")
    client_id_setting, client_secret_setting = "ATLASSIAN_CLIENT_ID", "ATLASSIAN_CLIENT_SECRET"


def provider_for(connection):
    from tenants.models import FreshBooksAccount

    return FreshBooksProvider() if isinstance(connection, FreshBooksAccount) else AtlassianProvider()
