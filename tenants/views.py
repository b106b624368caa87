"""Browser OAuth flows that connect a tenant's FreshBooks business or Jira site, one generic set of views
driven by the declarative providers (tenants.oauth.PROVIDERS, by the URL's vendor).

Every step needs a staff user who may change the tenant and its connection (`may_connect`). GET
connect/<slug>/ is a confirmation page whose button POSTs (CSRF-protected) to the same URL; that POST
stores a random `state` in the operator's session, bound to the tenant, and redirects to the vendor. The
callback takes that state out of the session (single use), checks its age (10 minutes) and compares it in
constant time, exchanges the code, lets the provider discover the businesses or sites and save the
connection in one transaction. Several choices → a choice page; the token waits for the choice encrypted
in the session for at most 10 minutes. Any failure ends on a clear page plus an admin message, and nothing
is saved. A used state is remembered (its hash, for STATE_TTL): the callback reached again (the browser's Back
button after connecting) says the connection is in place when it is, instead of "does not match".
"""

import hashlib
import hmac
import json
import logging
import secrets
import time
from functools import wraps

from cryptography.fernet import InvalidToken
from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db import IntegrityError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_http_methods

from tenants.models import ConnectionStatus, FreshBooksAccount, JiraSite, Tenant
from tenants.oauth import PROVIDERS, ConnectError
from tenants.setup import connect_blocker
from tenants.tokens import oauth_error_code

log = logging.getLogger(__name__)

STATE_TTL = 600  # seconds a state (and a pending choice) stays valid
MAX_PENDING_STATES = 5  # flows an operator may have open at once (several tabs), per vendor
MAX_CODE_LENGTH = 4096  # an authorization code longer than this is not one
CONNECTIONS = {"freshbooks": FreshBooksAccount, "jira": JiraSite}


# --- permissions --------------------------------------------------------------------------------------------


def may_connect(user, vendor, tenant):
    """True when `user` may change `tenant` and its connection for `vendor` (add it, if it has none yet)."""
    model = CONNECTIONS[vendor]
    verb = "change" if model.objects.filter(tenant=tenant).exists() else "add"
    return (
        user.is_active
        and user.is_staff
        and user.has_perms(["tenants.change_tenant", f"tenants.{verb}_{model._meta.model_name}"])
    )


def _require_connect_permission(request, provider, tenant):
    if not may_connect(request.user, provider.vendor, tenant):
        raise ConnectError(
            f"You may not connect {provider.label} for {tenant}: it needs the permissions to change the tenant "
            f"and its {CONNECTIONS[provider.vendor]._meta.verbose_name}.",
            status=403,
            tenant=tenant,
        )


# --- state and pending choices ------------------------------------------------------------------------------


def _state_key(vendor):
    return f"oauth_state:{vendor}"


def _used_key(vendor):
    return f"oauth_used:{vendor}"


def _digest(state):
    return hashlib.sha256(state.encode()).hexdigest()


class AlreadyUsed(Exception):
    """The callback of a sign-in that already came back (single-use state): `tenant` is its tenant."""

    def __init__(self, tenant):
        super().__init__(f"already used for {tenant}")
        self.tenant = tenant


def _remember_used(request, vendor, state, tenant):
    now = time.time()
    used = [e for e in request.session.get(_used_key(vendor)) or [] if now - e["created"] <= STATE_TTL]
    used = [*used[-(MAX_PENDING_STATES - 1) :], {"digest": _digest(state), "tenant": tenant, "created": now}]
    request.session[_used_key(vendor)] = used


def _used_tenant(request, vendor, given):
    """The tenant of an already used state equal to `given`, else None."""
    digest = _digest(given).encode()
    for entry in request.session.get(_used_key(vendor)) or []:
        if hmac.compare_digest(entry["digest"].encode(), digest):
            return Tenant.objects.filter(pk=entry["tenant"]).first()
    return None


def _pending_key(vendor):
    return f"oauth_pending:{vendor}"


def _fernet():
    # The same keys as the encrypted model fields (FERNET_KEYS; the first encrypts).
    return FreshBooksAccount._meta.get_field("access_token").fernet


def _seal(token):
    return _fernet().encrypt(json.dumps(token).encode()).decode()


def _unseal(sealed):
    return json.loads(_fernet().decrypt(sealed.encode(), ttl=STATE_TTL))


def _take_state(request, vendor):
    """Pop the pending state matching `state` (single use) and return its tenant when still fresh."""
    pending = request.session.get(_state_key(vendor)) or []
    given = request.GET.get("state", "")
    # Constant-time comparison against every pending state, so timing reveals nothing about them.
    matches = [entry for entry in pending if hmac.compare_digest(entry["state"].encode(), given.encode())]
    if given and not matches:
        tenant = _used_tenant(request, vendor, given)
        if tenant is not None:
            raise AlreadyUsed(tenant)
    if not given or not matches:
        raise ConnectError(
            "This sign-in is not valid: its state does not match this session (missing, forged or already "
            "used). Start again from the tenant page.",
            status=403,
        )
    entry = matches[0]
    request.session[_state_key(vendor)] = [e for e in pending if e is not entry]
    _remember_used(request, vendor, given, entry["tenant"])
    if time.time() - entry["created"] > STATE_TTL:
        raise ConnectError("The sign-in took longer than 10 minutes. Start again.", status=403)
    tenant = Tenant.objects.filter(pk=entry["tenant"]).first()
    if tenant is None:
        raise ConnectError("The tenant of this sign-in no longer exists.", status=404)
    return tenant


def _take_pending(request, provider):
    pending = request.session.pop(_pending_key(provider.vendor), None)
    if not pending:
        raise ConnectError("There is no pending choice (already used or expired). Start again.", status=403)
    tenant = Tenant.objects.filter(pk=pending["tenant"]).first()
    if tenant is None:
        raise ConnectError("The tenant of this sign-in no longer exists.", status=404)
    _require_connect_permission(request, provider, tenant)
    try:
        token = _unseal(pending["token"])
    except InvalidToken as exc:
        raise ConnectError("The choice took longer than 10 minutes. Start again.", tenant=tenant) from exc
    field = provider.choice_field
    chosen = next((c for c in pending["choices"] if c[field] == request.POST.get("choice")), None)
    if chosen is None:
        raise ConnectError("Choose one of the listed options. Start again.", tenant=tenant)
    return tenant, token, chosen, pending.get("extra") or {}


# --- the vendor's answer ------------------------------------------------------------------------------------


def _vendor_error(request, tenant, provider):
    error = request.GET.get("error")
    if error:
        detail = (request.GET.get("error_description") or error)[:200]
        if error == "access_denied":
            raise ConnectError(
                f"Access was not granted on {provider.label} ({detail}). Nothing was changed.", tenant=tenant
            )
        raise ConnectError(f"{provider.label} answered with an error: {detail}", tenant=tenant)
    if not request.GET.get("code"):
        raise ConnectError(f"{provider.label} sent no authorization code.", tenant=tenant)
    if len(request.GET["code"]) > MAX_CODE_LENGTH:
        raise ConnectError(f"{provider.label} sent an authorization code that is too long.", tenant=tenant)


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


# --- pages --------------------------------------------------------------------------------------------------


def _failure(request, error, provider):
    messages.error(request, f"{provider.label} was not connected: {error}")
    context = {
        **admin.site.each_context(request),
        "title": f"{provider.label} not connected",
        "error": str(error),
        "tenant": error.tenant,
        "vendor": provider.label,
    }
    return TemplateResponse(request, "tenants/connect_failed.html", context, status=error.status)


def _already_used(request, provider, tenant):
    """This sign-in came back before: say how the tenant's connection is now, on the tenant page when it is
    connected (nothing was wrong), else the failure page with that state."""
    connection = CONNECTIONS[provider.vendor].objects.filter(tenant=tenant).first()
    if connection is not None and connection.status == ConnectionStatus.CONNECTED:
        name = getattr(connection, "business_name", "") or str(connection)
        messages.info(
            request,
            f"This {provider.label} sign-in was already completed: {provider.noun} {name} is connected to "
            f"{tenant}. Nothing else to do.",
        )
        return redirect("admin:tenants_tenant_change", tenant.pk)
    state = connection.get_status_display().lower() if connection else "not connected"
    error = ConnectError(
        f"This sign-in was already used; {provider.label} is {state} for {tenant}. Start again from the "
        "tenant page to connect it.",
        status=403,
        tenant=tenant,
    )
    return _failure(request, error, provider)


def _choice_page(request, provider, tenant, choices):
    context = {
        **admin.site.each_context(request),
        "title": f"Choose the {provider.noun} for {tenant}",
        "tenant": tenant,
        "vendor": provider.vendor,
        "choices": choices,
    }
    return TemplateResponse(request, f"tenants/choose_{provider.vendor}.html", context)


def _step(method):
    """A staff-only callback or choice view for the URL's vendor: a ConnectError ends on the failure page; a
    saved connection (the step's return value, unless it is a page) goes back to the tenant page."""

    def decorate(step):
        @wraps(step)
        @require_http_methods([method])
        @staff_member_required
        def view(request, vendor):
            provider = PROVIDERS[vendor]()
            try:
                result = step(request, provider)
            except ConnectError as error:
                return _failure(request, error, provider)
            except AlreadyUsed as used:
                return _already_used(request, provider, used.tenant)
            except IntegrityError:  # another sign-in saved the same connection at this moment
                error = ConnectError(
                    "Another sign-in connected this at the same moment. Reload the tenant page.", 409
                )
                return _failure(request, error, provider)
            if isinstance(result, HttpResponse):
                return result
            name = getattr(result, "business_name", "") or str(result)
            messages.success(request, f"{provider.noun} {name} is connected to {result.tenant}.")
            return redirect("admin:tenants_tenant_change", result.tenant_id)

        return view

    return decorate


# --- the views ----------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@staff_member_required
def connect(request, vendor, slug):
    """GET: the confirmation page; POST (its button): start the flow and redirect to the vendor."""
    tenant = get_object_or_404(Tenant, slug=slug)
    provider = PROVIDERS[vendor]()
    try:
        _require_connect_permission(request, provider, tenant)
    except ConnectError as error:
        return _failure(request, error, provider)
    blocker = connect_blocker(vendor)
    if blocker:  # a page that says what to set, instead of a redirect with an empty client_id
        return _failure(request, ConnectError(blocker, status=400, tenant=tenant), provider)
    if request.method == "GET":
        context = {
            **admin.site.each_context(request),
            "title": f"Connect {provider.label} for {tenant}",
            "tenant": tenant,
            "vendor": provider.label,
            "existing": CONNECTIONS[vendor].objects.filter(tenant=tenant).first(),
        }
        return TemplateResponse(request, "tenants/connect_confirm.html", context)
    try:
        provider.authorization_url("check")
    except Exception as exc:  # oauthlib refuses e.g. an http authorize URL (InsecureTransportError)
        detail = getattr(exc, "description", "") or str(exc)
        error = ConnectError(
            f"The {provider.label} sign-in is misconfigured: {detail}", status=400, tenant=tenant
        )
        return _failure(request, error, provider)
    state = secrets.token_urlsafe(32)
    now = time.time()
    pending = [e for e in request.session.get(_state_key(vendor)) or [] if now - e["created"] <= STATE_TTL]
    pending = [*pending[-(MAX_PENDING_STATES - 1) :], {"state": state, "tenant": tenant.pk, "created": now}]
    request.session[_state_key(vendor)] = pending
    request.session.pop(_pending_key(vendor), None)
    return redirect(provider.authorization_url(state))


@_step("GET")
def callback(request, provider):
    """The vendor sends the operator back here: exchange the code, discover, save (or ask to choose)."""
    tenant = _take_state(request, provider.vendor)
    _require_connect_permission(request, provider, tenant)
    _vendor_error(request, tenant, provider)
    token = _exchange(provider, request.GET["code"], tenant)
    choices, extra = provider.discover(token, tenant)
    if len(choices) > 1:
        request.session[_pending_key(provider.vendor)] = {
            "tenant": tenant.pk,
            "token": _seal(token),
            "choices": choices,
            "extra": extra,
        }
        return _choice_page(request, provider, tenant, choices)
    return provider.save(tenant, token, choices[0], extra)


@_step("POST")
def choose(request, provider):
    """The operator picked one of several businesses or sites."""
    tenant, token, chosen, extra = _take_pending(request, provider)
    return provider.save(tenant, token, chosen, extra)
