"""OAuth 2.0 providers as small declarative classes on requests-oauthlib: URLs, scopes and extra parameters,
what the operator chooses after signing in (FreshBooks business or Jira site: `discover`) and how the chosen
connection is saved (`save`). The generic connect/callback/choose views (tenants.views) drive them.
"""

import os
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from requests_oauthlib import OAuth2Session

from connector.errors import TokenRefused, VendorError
from connector.transport import VendorClient
from tenants.models import ConnectionStatus, FreshBooksAccount, JiraSite

# Vendors may grant a different (e.g. reordered or narrower) scope than requested: record what they grant
# instead of failing the exchange; the connection checks report missing permissions.
os.environ.setdefault("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")


class ConnectError(Exception):
    """The connect flow cannot go on; the message is shown to the operator."""

    def __init__(self, message, status=400, tenant=None):
        super().__init__(message)
        self.status = status
        self.tenant = tenant


class _BearerClient(VendorClient):
    """One GET of a vendor URL with a fresh access token, on the one transport (connector.transport)."""

    vendor = "the vendor"

    def __init__(self, access_token):
        super().__init__(actor="operator", sleep=lambda _seconds: None)
        self.access_token = access_token

    def url(self, path):
        return path  # the full URL

    def credentials(self):
        return {"headers": {"Authorization": f"Bearer {self.access_token}"}}


def get_json(url, access_token, tenant, what):
    """GET a vendor URL with a fresh access token; ConnectError (502) when it cannot be read (the message gives
    the HTTP status or the kind of failure in plain words, never the remote answer)."""
    try:
        return _BearerClient(access_token).request("GET", url)
    except VendorError as exc:
        if exc.status is None:
            why = str(exc).split(": ", 1)[-1]  # the transport's plain words for a network failure
        elif 300 <= exc.status < 400:
            why = f"HTTP {exc.status} (a redirect, not followed)"
        elif exc.status < 300:
            why = "the answer is not JSON"
        else:
            why = f"HTTP {exc.status}"
        raise ConnectError(f"Could not read {what}: {why}.", status=502, tenant=tenant) from exc


class _Session(OAuth2Session):
    """requests-oauthlib's session for the token endpoints, never following a redirect (a token request
    re-sent elsewhere would carry the client secret and the code there)."""

    def send(self, request, **kwargs):
        kwargs["allow_redirects"] = False
        return super().send(request, **kwargs)


def token_fields(token):
    """The connection fields (FreshBooksAccount or JiraSite) for a token answer."""
    scope = token.get("scope") or ""
    return {
        "access_token": token["access_token"],
        "refresh_token": token.get("refresh_token") or "",
        "token_expires_at": timezone.now() + timedelta(seconds=int(token.get("expires_in") or 3600)),
        "scopes": " ".join(scope) if isinstance(scope, list) else scope,
        "status": ConnectionStatus.CONNECTED,
        "last_error": "",
        "last_refreshed_at": timezone.now(),
    }


# OAuth error codes that say "try again later" (RFC 6749 §4.1.2.1, §5.2 as vendors use them).
TRANSIENT_ERRORS = {"temporarily_unavailable", "server_error"}


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
    return TokenRefused(error, str(body.get("error_description") or "").strip(), status=response.status_code)


class OAuthProvider:
    """A provider is declared by class attributes; URLs and credentials are read from settings at call time
    (tests point the base URLs at loopback fakes): `authorize = ("SETTING", "/path")`, likewise `token`.

    For the connect flow: `vendor` (the URL segment and template suffix), `label`, `noun` (what is chosen),
    `choice_field` (the key that identifies a choice), `discover(token, tenant)` → (choices, extra) and
    `save(tenant, token, choice, extra)` → the saved connection. Both raise ConnectError."""

    name = ""
    discovery: tuple[str, str] = ("", "")  # what the token gives access to (users/me, accessible-resources)
    vendor = ""
    label = ""
    noun = ""
    choice_field = ""
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
    def discovery_url(self):
        base, path = self.discovery
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
        return settings.PUBLIC_BASE_URL + reverse(self.callback_url_name)

    def session(self, state=None, token=None):
        return _Session(
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

    def discover(self, token, tenant):
        raise NotImplementedError

    def save(self, tenant, token, choice, extra):
        raise NotImplementedError

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
    discovery = ("FRESHBOOKS_API_URL", "/auth/api/v1/users/me")
    client_id_setting, client_secret_setting = "FRESHBOOKS_CLIENT_ID", "FRESHBOOKS_CLIENT_SECRET"
    vendor, label, noun, choice_field = "freshbooks", "FreshBooks", "FreshBooks business", "business_id"

    def discover(self, token, tenant):
        """The businesses of the signed-in FreshBooks user (users/me), and their identity id."""
        me = get_json(self.discovery_url, token["access_token"], tenant, "the user")
        me = me.get("response") if isinstance(me, dict) else None
        if not isinstance(me, dict):
            raise ConnectError("FreshBooks answered users/me without a user.", status=502, tenant=tenant)
        businesses = _memberships(me)
        if not businesses:
            raise ConnectError("This FreshBooks user has no business to connect.", tenant=tenant)
        return businesses, {"identity_id": me.get("identity_id") or me.get("id")}

    def check(self, tenant, token, business):
        """The chosen business before it is saved Connected: its accounting API answers with the grant (one
        client, as the connection check reads). ConnectError otherwise: nothing is saved."""
        path = f"/accounting/account/{business['account_id']}/users/clients?page=1&per_page=1"
        get_json(
            settings.FRESHBOOKS_API_URL + path,
            token["access_token"],
            tenant,
            f"the business {business['name']}",
        )

    def save(self, tenant, token, business, extra):
        """The tenant's one FreshBooks account for `business`, once `check` passed; ConnectError (409) when
        taken."""
        self.check(tenant, token, business)
        with transaction.atomic():
            existing = (
                FreshBooksAccount.objects.select_for_update()
                .filter(account_id=business["account_id"], business_id=business["business_id"])
                .first()
            )
            if existing and existing.tenant_id != tenant.pk:
                raise ConnectError(
                    f"The FreshBooks business {business['name']} is already connected to tenant "
                    f"{existing.tenant}. Disconnect it there first: open that tenant's page and use Disconnect "
                    "next to the business under Connections.",
                    status=409,
                    tenant=tenant,
                )
            other = (
                FreshBooksAccount.objects.filter(tenant=tenant)
                .exclude(pk=getattr(existing, "pk", None))
                .first()
            )
            if other:
                raise ConnectError(
                    f"Tenant {tenant} already syncs the FreshBooks business {other}. A tenant syncs one business: "
                    "create another tenant for this one, or delete the current FreshBooks account in the admin first.",
                    status=409,
                    tenant=tenant,
                )
            account = existing or FreshBooksAccount(
                tenant=tenant, account_id=business["account_id"], business_id=business["business_id"]
            )
            account.business_name = business["name"]
            account.identity_id = str(extra.get("identity_id") or "")
            account.token_url = self.token_url
            for name, value in token_fields(token).items():
                setattr(account, name, value)
            account.save()
        return account


class AtlassianProvider(OAuthProvider):
    name = "atlassian"
    callback_url_name = "jira-oauth-callback"
    scopes = ["read:jira-work", "write:jira-work", "read:jira-user", "manage:jira-webhook", "offline_access"]
    extra_authorize_params = {"audience": "api.atlassian.com", "prompt": "consent"}

    authorize = ("ATLASSIAN_AUTH_URL", "/authorize")
    token = ("ATLASSIAN_AUTH_URL", "/oauth/token")
    discovery = ("ATLASSIAN_API_URL", "/oauth/token/accessible-resources")
    client_id_setting, client_secret_setting = "ATLASSIAN_CLIENT_ID", "ATLASSIAN_CLIENT_SECRET"
    vendor, label, noun, choice_field = "jira", "Jira", "Jira site", "cloud_id"

    def discover(self, token, tenant):
        """The Jira sites the grant covers (accessible-resources)."""
        resources = get_json(self.discovery_url, token["access_token"], tenant, "the Jira sites")
        sites = _sites(resources)
        if not sites:
            raise ConnectError("This Atlassian account gave access to no Jira site.", tenant=tenant)
        return sites, {}

    def check(self, tenant, token, site_info):
        """The chosen site before it is saved Connected: the grant covers it with the scopes the connector
        needs (accessible-resources lists them per site), and its API answers (GET myself through the gateway).
        ConnectError otherwise: nothing is saved."""
        granted = site_info.get("scopes")
        missing = [s for s in self.scopes if s != "offline_access" and s not in (granted or [])]
        if granted is not None and missing:
            raise ConnectError(
                f"The Atlassian grant for {site_info['url']} lacks {', '.join(missing)}: connect again and allow "
                "them (a site administrator may have to approve the app).",
                status=403,
                tenant=tenant,
            )
        myself = f"{settings.ATLASSIAN_API_URL}/ex/jira/{site_info['cloud_id']}/rest/api/3/myself"
        get_json(myself, token["access_token"], tenant, f"the Jira site {site_info['url']}")

    def save(self, tenant, token, site_info, extra):
        """The tenant's Jira site, now the chosen Cloud site over OAuth (replacing an API-token site), once
        `check` passed."""
        self.check(tenant, token, site_info)
        with transaction.atomic():
            site = JiraSite.objects.select_for_update().filter(tenant=tenant).first() or JiraSite(
                tenant=tenant
            )
            site.auth_method = JiraSite.AuthMethod.OAUTH2
            site.deployment = JiraSite.Deployment.CLOUD
            site.cloud_id = site_info["cloud_id"]
            site.base_url = site_info["url"]
            site.site_name = site_info["name"]
            site.token_url = self.token_url
            for name, value in token_fields(token).items():
                setattr(site, name, value)
            site.save()
        return site


PROVIDERS = {provider.vendor: provider for provider in (FreshBooksProvider, AtlassianProvider)}


def provider_for(connection):
    return FreshBooksProvider() if isinstance(connection, FreshBooksAccount) else AtlassianProvider()


def _memberships(me):
    """users/me business memberships → [{account_id, business_id, name, role}] (malformed entries dropped)."""
    found = []
    memberships = me.get("business_memberships")
    for membership in memberships if isinstance(memberships, list) else []:
        business = membership.get("business") if isinstance(membership, dict) else None
        if isinstance(business, dict) and business.get("account_id") and business.get("id") is not None:
            found.append(
                {
                    "account_id": str(business["account_id"]),
                    "business_id": str(business["id"]),
                    "name": str(business.get("name") or ""),
                    "role": str(membership.get("role") or ""),
                }
            )
    return found


def _sites(resources):
    """accessible-resources → [{cloud_id, url, name}] of the Jira sites (malformed entries dropped)."""
    found = []
    for resource in resources if isinstance(resources, list) else []:
        if not isinstance(resource, dict) or not isinstance(resource.get("url"), str):
            continue
        scopes = resource.get("scopes") if isinstance(resource.get("scopes"), list) else []
        if resource.get("id") and resource["url"] and (not scopes or any("jira" in str(s) for s in scopes)):
            found.append(
                {
                    "cloud_id": str(resource["id"]),
                    "url": resource["url"].rstrip("/"),
                    "name": str(resource.get("name") or ""),
                    "scopes": [str(s) for s in scopes] if isinstance(resource.get("scopes"), list) else None,
                }
            )
    return found
