"""Browser OAuth flows that connect a tenant's FreshBooks business and Jira site.

Every step needs a staff user who may change the tenant and its connection (`may_connect`). GET
connect/<slug>/ is a confirmation page whose button POSTs (CSRF-protected) to the same URL; that POST stores a random `state` in the operator's session, bound to the tenant, and redirects to
the vendor. The callback takes that state out of the session (single use), checks its age (10 minutes)
and compares it in constant time, exchanges the code, discovers the business or site, and saves the
connection in one transaction. Several businesses or sites → a choice page; the token waits for the
choice encrypted in the session for at most 10 minutes. Any failure ends on a clear page plus an admin
message, and nothing is saved.
"""

import hmac
import json
import logging
import secrets
import time
from datetime import timedelta
from functools import wraps

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from connector import http
from connector.freshbooks import client as freshbooks_api
from tenants.models import ConnectionStatus, FreshBooksAccount, JiraSite, Tenant
from tenants.oauth import AtlassianProvider, FreshBooksProvider
from tenants.tokens import oauth_error_code

log = logging.getLogger(__name__)

STATE_TTL = 600  # seconds a state (and a pending choice) stays valid
ACCESSIBLE_RESOURCES = "/oauth/token/accessible-resources"
PROVIDERS = {"freshbooks": FreshBooksProvider, "jira": AtlassianProvider}
CONNECTIONS = {"freshbooks": FreshBooksAccount, "jira": JiraSite}
LABELS = {"freshbooks": "FreshBooks", "jira": "Jira"}


class ConnectError(Exception):
    """The flow cannot go on; the message is shown to the operator."""

    def __init__(self, message, status=400, tenant=None):
        super().__init__(message)
        self.status = status
        self.tenant = tenant


# --- state and pending choices ------------------------------------------------------------------------------


def _state_key(vendor):
    return f"oauth_state:{vendor}"


def _pending_key(vendor):
    return f"oauth_pending:{vendor}"


def _fernet():
    # The same keys as the encrypted model fields (FERNET_KEYS; the first encrypts).
    return FreshBooksAccount._meta.get_field("access_token").fernet


def _seal(token):
    return _fernet().encrypt(json.dumps(token).encode()).decode()


def _unseal(sealed):
    return json.loads(_fernet().decrypt(sealed.encode(), ttl=STATE_TTL))


MAX_CODE_LENGTH = 4096  # an authorization code longer than this is not one
MAX_PENDING_STATES = 5  # flows an operator may have open at once (several tabs), per vendor


def _take_state(request, vendor):
    """Pop the pending state matching `state` (single use) and return its tenant when still fresh."""
    pending = request.session.get(_state_key(vendor)) or []
    given = request.GET.get("state", "")
    # Constant-time comparison against every pending state, so timing reveals nothing about them.
    matches = [entry for entry in pending if hmac.compare_digest(entry["state"].encode(), given.encode())]
    if not given or not matches:
        raise ConnectError(
            "This sign-in is not valid: its state does not match this session (missing, forged or already "
            "used). Start again from the tenant page.",
            status=403,
        )
    entry = matches[0]
    request.session[_state_key(vendor)] = [e for e in pending if e is not entry]
    if time.time() - entry["created"] > STATE_TTL:
        raise ConnectError("The sign-in took longer than 10 minutes. Start again.", status=403)
    tenant = Tenant.objects.filter(pk=entry["tenant"]).first()
    if tenant is None:
        raise ConnectError("The tenant of this sign-in no longer exists.", status=404)
    return tenant


def _vendor_error(request, tenant, vendor):
    error = request.GET.get("error")
    if error:
        detail = (request.GET.get("error_description") or error)[:200]
        if error == "access_denied":
            raise ConnectError(
                f"Access was not granted on {LABELS[vendor]} ({detail}). Nothing was changed.", tenant=tenant
            )
        raise ConnectError(f"{LABELS[vendor]} answered with an error: {detail}", tenant=tenant)
    if not request.GET.get("code"):
        raise ConnectError(f"{LABELS[vendor]} sent no authorization code.", tenant=tenant)
    if len(request.GET["code"]) > MAX_CODE_LENGTH:
        raise ConnectError(f"{LABELS[vendor]} sent an authorization code that is too long.", tenant=tenant)


def _exchange(provider, code, tenant):
    try:
        token = provider.fetch_token(code)
    except Exception as exc:  # oauthlib errors, network errors, non-JSON answers
        log.warning("%s token exchange failed for %s: %s", provider.name, tenant, type(exc).__name__)
        reason = oauth_error_code(exc)  # never the vendor's free text or body
        raise ConnectError(f"The token exchange failed ({reason}).", status=502, tenant=tenant) from exc
    if not token.get("access_token"):
        raise ConnectError("The token exchange returned no access token.", status=502, tenant=tenant)
    return dict(token)


def _get_json(url, access_token, tenant, what):
    try:
        response = http.send(
            "GET", url, actor="operator", headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        )  # fmt: skip
    except Exception as exc:  # network errors: the exception names the URL, not an answer
        raise ConnectError(
            f"Could not read {what}: {type(exc).__name__}.", status=502, tenant=tenant
        ) from exc
    if response.status_code >= 400:
        raise ConnectError(f"Could not read {what}: HTTP {response.status_code}.", status=502, tenant=tenant)
    try:
        return response.json()
    except ValueError as exc:  # the answer is not shown: it may be anything the remote sent
        raise ConnectError(
            f"Could not read {what}: the answer is not JSON.", status=502, tenant=tenant
        ) from exc


def may_connect(user, vendor, tenant):
    """True when `user` may change `tenant` and its connection for `vendor` (add it, if it has none yet)."""
    model = CONNECTIONS[vendor]
    verb = "change" if model.objects.filter(tenant=tenant).exists() else "add"
    return (
        user.is_active
        and user.is_staff
        and user.has_perms(["tenants.change_tenant", f"tenants.{verb}_{model._meta.model_name}"])
    )


def _require_connect_permission(request, vendor, tenant):
    if not may_connect(request.user, vendor, tenant):
        raise ConnectError(
            f"You may not connect {LABELS[vendor]} for {tenant}: it needs the permissions to change the tenant "
            f"and its {CONNECTIONS[vendor]._meta.verbose_name}.",
            status=403,
            tenant=tenant,
        )


def _failure(request, error, vendor):
    messages.error(request, f"{LABELS[vendor]} was not connected: {error}")
    context = {
        **admin.site.each_context(request),
        "title": f"{LABELS[vendor]} not connected",
        "error": str(error),
        "tenant": error.tenant,
        "vendor": LABELS[vendor],
    }
    return TemplateResponse(request, "tenants/connect_failed.html", context, status=error.status)


def _step(vendor, method):
    """A staff-only callback or choice view: a ConnectError ends on the failure page; a saved connection
    (the step's return value, unless it is a page) goes back to the tenant page with a success message."""
    noun = "FreshBooks business" if vendor == "freshbooks" else "Jira site"

    def decorate(step):
        @wraps(step)
        @require_http_methods([method])
        @staff_member_required
        def view(request):
            try:
                result = step(request)
            except ConnectError as error:
                return _failure(request, error, vendor)
            except IntegrityError:  # another sign-in saved the same connection at this moment
                error = ConnectError(
                    "Another sign-in connected this at the same moment. Reload the tenant page.", 409
                )
                return _failure(request, error, vendor)
            if isinstance(result, HttpResponse):
                return result
            name = getattr(result, "business_name", "") or str(result)
            messages.success(request, f"{noun} {name} is connected to {result.tenant}.")
            return redirect("admin:tenants_tenant_change", result.tenant_id)

        return view

    return decorate


def _token_fields(token):
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


# --- connect -------------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@staff_member_required
def connect(request, vendor, slug):
    """GET: the confirmation page; POST (its button): start the flow and redirect to the vendor."""
    tenant = get_object_or_404(Tenant, slug=slug)
    try:
        _require_connect_permission(request, vendor, tenant)
    except ConnectError as error:
        return _failure(request, error, vendor)
    if request.method == "GET":
        context = {
            **admin.site.each_context(request),
            "title": f"Connect {LABELS[vendor]} for {tenant}",
            "tenant": tenant,
            "vendor": LABELS[vendor],
            "existing": CONNECTIONS[vendor].objects.filter(tenant=tenant).first(),
        }
        return TemplateResponse(request, "tenants/connect_confirm.html", context)
    provider = PROVIDERS[vendor]()
    state = secrets.token_urlsafe(32)
    now = time.time()
    pending = [e for e in request.session.get(_state_key(vendor)) or [] if now - e["created"] <= STATE_TTL]
    pending = [*pending[-(MAX_PENDING_STATES - 1) :], {"state": state, "tenant": tenant.pk, "created": now}]
    request.session[_state_key(vendor)] = pending
    request.session.pop(_pending_key(vendor), None)
    return redirect(provider.authorization_url(state))


# --- FreshBooks ----------------------------------------------------------------------------------------------


def _memberships(me):
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


def _save_freshbooks(tenant, token, business, identity_id):
    with transaction.atomic():
        existing = (
            FreshBooksAccount.objects.select_for_update()
            .filter(account_id=business["account_id"], business_id=business["business_id"])
            .first()
        )
        if existing and existing.tenant_id != tenant.pk:
            raise ConnectError(
                f"The FreshBooks business {business['name']} is already connected to tenant "
                f"{existing.tenant}. Disconnect it there first.",
                status=409,
                tenant=tenant,
            )
        other = (
            FreshBooksAccount.objects.filter(tenant=tenant).exclude(pk=getattr(existing, "pk", None)).first()
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
        account.identity_id = str(identity_id or "")
        for name, value in _token_fields(token).items():
            setattr(account, name, value)
        account.save()
    return account


@_step("freshbooks", "GET")
def freshbooks_callback(request):
    tenant = _take_state(request, "freshbooks")
    _require_connect_permission(request, "freshbooks", tenant)
    _vendor_error(request, tenant, "freshbooks")
    token = _exchange(FreshBooksProvider(), request.GET["code"], tenant)
    me = _get_json(settings.FRESHBOOKS_API_URL + freshbooks_api.ME, token["access_token"], tenant, "the user")
    me = me.get("response") if isinstance(me, dict) else None
    if not isinstance(me, dict):
        raise ConnectError("FreshBooks answered users/me without a user.", status=502, tenant=tenant)
    businesses = _memberships(me)
    if not businesses:
        raise ConnectError("This FreshBooks user has no business to connect.", tenant=tenant)
    if len(businesses) > 1:
        request.session[_pending_key("freshbooks")] = {
            "tenant": tenant.pk,
            "token": _seal(token),
            "choices": businesses,
            "identity_id": me.get("identity_id") or me.get("id"),
        }
        return _choice_page(request, "freshbooks", tenant, businesses)
    return _save_freshbooks(tenant, token, businesses[0], me.get("identity_id") or me.get("id"))


def _choice_page(request, vendor, tenant, choices):
    context = {
        **admin.site.each_context(request),
        "title": f"Choose the {'FreshBooks business' if vendor == 'freshbooks' else 'Jira site'} for {tenant}",
        "tenant": tenant,
        "vendor": vendor,
        "choices": choices,
    }
    return TemplateResponse(request, f"tenants/choose_{vendor}.html", context)


def _take_pending(request, vendor, field):
    pending = request.session.pop(_pending_key(vendor), None)
    if not pending:
        raise ConnectError("There is no pending choice (already used or expired). Start again.", status=403)
    tenant = Tenant.objects.filter(pk=pending["tenant"]).first()
    if tenant is None:
        raise ConnectError("The tenant of this sign-in no longer exists.", status=404)
    _require_connect_permission(request, vendor, tenant)
    try:
        token = _unseal(pending["token"])
    except InvalidToken as exc:
        raise ConnectError("The choice took longer than 10 minutes. Start again.", tenant=tenant) from exc
    chosen = next((c for c in pending["choices"] if c[field] == request.POST.get("choice")), None)
    if chosen is None:
        raise ConnectError("Choose one of the listed options. Start again.", tenant=tenant)
    return tenant, token, chosen, pending


@_step("freshbooks", "POST")
def freshbooks_choose(request):
    tenant, token, business, pending = _take_pending(request, "freshbooks", "business_id")
    return _save_freshbooks(tenant, token, business, pending.get("identity_id"))


# --- Jira (Atlassian OAuth 2.0 3LO) --------------------------------------------------------------------------


def _sites(resources):
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
                }
            )
    return found


def _save_jira(tenant, token, site_info):
    with transaction.atomic():
        site = JiraSite.objects.select_for_update().filter(tenant=tenant).first() or JiraSite(tenant=tenant)
        site.auth_method = JiraSite.AuthMethod.OAUTH2
        site.deployment = JiraSite.Deployment.CLOUD
        site.cloud_id = site_info["cloud_id"]
        site.base_url = site_info["url"]
        site.site_name = site_info["name"]
        for name, value in _token_fields(token).items():
            setattr(site, name, value)
        site.save()
    return site


@_step("jira", "GET")
def jira_callback(request):
    tenant = _take_state(request, "jira")
    _require_connect_permission(request, "jira", tenant)
    _vendor_error(request, tenant, "jira")
    token = _exchange(AtlassianProvider(), request.GET["code"], tenant)
    resources = _get_json(
        settings.ATLASSIAN_API_URL + ACCESSIBLE_RESOURCES, token["access_token"], tenant, "the Jira sites"
    )
    sites = _sites(resources)
    if not sites:
        raise ConnectError("This Atlassian account gave access to no Jira site.", tenant=tenant)
    if len(sites) > 1:
        request.session[_pending_key("jira")] = {
            "tenant": tenant.pk,
            "token": _seal(token),
            "choices": sites,
        }
        return _choice_page(request, "jira", tenant, sites)
    return _save_jira(tenant, token, sites[0])


@_step("jira", "POST")
def jira_choose(request):
    tenant, token, site_info, _ = _take_pending(request, "jira", "cloud_id")
    return _save_jira(tenant, token, site_info)
