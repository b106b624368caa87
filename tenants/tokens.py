"""Race-safe OAuth token refresh, one code path for FreshBooks accounts and OAuth Jira sites.

Refresh tokens are single-use (FreshBooks) or rotating (Atlassian: reusing one kills the grant), so a
refresh happens under a row lock, re-checks the expiry once the lock is held, and saves the new pair in
the same transaction. Credentials are never deleted on failure.

A rotated refresh token is stored for good the moment the vendor returns it: the refresh runs in its own
outermost transaction (`atomic(durable=True)`: Django refuses to nest it), committed when the block ends. It
is never attempted inside a caller's transaction, whose rollback would take the new token with it (the old
one is then refused: invalid_grant, and the whole connection stops): such a call fails as transient
(RefreshDeferred, a TokenRefreshError) and the token it found unusable is treated as expired by this process,
so the next try, outside, refreshes it even when Jira refused it (401) before its expiry. Callers that open a
transaction around vendor calls obtain their credentials first (`VendorClient.ready`) and, on
RefreshDeferred, leave it, obtain them again and retry (connector.ledger.under_lock); web requests make no
vendor call inside one (connector.transport.guard_transaction).
"""

import logging
import re
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone
from oauthlib.oauth2 import InvalidGrantError, OAuth2Error

from connector.errors import ReconnectRequired, RefreshDeferred, TokenRefreshError, TokenRefused
from connector.transport import open_transaction
from tenants.models import ConnectionStatus
from tenants.oauth import provider_for

log = logging.getLogger(__name__)
OAUTH_ERROR_CODE = re.compile(r"[A-Za-z0-9_]{1,64}")

# Sent (sender: the model, connection: the row) when a connection turns "needs reconnect"; audit alerts on it.
reconnect_required = Signal()

REFRESH_MARGIN = timedelta(minutes=5)
INVALID_GRANT_GRACE = 1.0  # seconds a competing write gets to land before invalid_grant is believed


__all__ = ["ReconnectRequired", "TokenRefreshError", "access_token", "mark_reconnect", "refresh"]


def _fresh(conn, margin=REFRESH_MARGIN):
    return (
        bool(conn.access_token)
        and conn.token_expires_at is not None
        and conn.token_expires_at > timezone.now() + margin
    )


def check_origin(conn, provider=None):
    """Refuse to use `conn`'s tokens where they were not issued: TokenRefreshError (the connection is left as
    it is, nothing is sent) when this process's vendor URLs (FRESHBOOKS_API_URL, ATLASSIAN_AUTH_URL) lead to
    another token endpoint than the one that issued them — a process started in sandbox mode by mistake (no
    vendor variables set) never sends a real token to a sandbox port. Tokens of unknown origin (connected
    before the origin was recorded) are not used in sandbox mode."""
    provider = provider or provider_for(conn)
    here = provider.token_url
    if conn.token_url == here or (not conn.token_url and not settings.SANDBOX):
        return
    issued = conn.token_url or "an unrecorded token endpoint"
    sandbox = " (sandbox mode: no vendor credentials are set in this process's environment)"
    raise TokenRefreshError(
        f"{conn} was connected through {issued}; this process would send its tokens to {here}"
        f"{sandbox if settings.SANDBOX else ''}: not sent. Run with the vendor settings it was connected with."
    )


def access_token(conn):
    """A usable access token for `conn`, refreshed first when it expires within the margin; TokenRefreshError
    when this process points at another vendor than the one that issued it (check_origin)."""
    check_origin(conn)
    if conn.status == ConnectionStatus.NEEDS_RECONNECT:
        raise ReconnectRequired(conn.last_error or f"{conn} needs to be connected again.")
    if _fresh(conn):
        return conn.access_token
    return refresh(conn, stale_token=conn.access_token)


def _save_token(conn, token, provider):
    conn.access_token = token["access_token"]
    # Atlassian sometimes omits the refresh token: keep the one we have.
    conn.refresh_token = token.get("refresh_token") or conn.refresh_token
    conn.token_expires_at = timezone.now() + timedelta(seconds=int(token.get("expires_in") or 3600))
    if token.get("scope"):
        scope = token["scope"]
        conn.scopes = " ".join(scope) if isinstance(scope, list) else scope
    conn.status = ConnectionStatus.CONNECTED
    conn.last_error = ""
    conn.last_refreshed_at = timezone.now()
    conn.token_url = provider.token_url
    conn.save(
        update_fields=[
            "access_token",
            "refresh_token",
            "token_expires_at",
            "scopes",
            "status",
            "last_error",
            "last_refreshed_at",
            "token_url",
        ]
    )


def _adopt(conn, row):
    for name in (
        "access_token",
        "refresh_token",
        "token_expires_at",
        "status",
        "last_error",
        "last_refreshed_at",
    ):
        setattr(conn, name, getattr(row, name))
    return conn.access_token


def refresh(conn, stale_token=None):
    """Refresh `conn`'s tokens unless another worker already did; returns the access token to use.

    `stale_token` is the access token the caller found unusable (expired or answered 401): if the row
    holds a different, fresh one, that one is adopted and no refresh-token request is made.
    """
    model = type(conn)
    provider = provider_for(conn)
    check_origin(conn, provider)
    if open_transaction():
        if stale_token is None or stale_token == conn.access_token:
            conn.token_expires_at = None  # in memory only: the next access_token(), outside, refreshes it
        raise RefreshDeferred(
            f"{provider.name} token refresh deferred: it was needed inside a database transaction, whose rollback "
            "would lose the rotated refresh token; it is refreshed on the next try."
        )
    with transaction.atomic(durable=True):  # outermost: the new pair is committed when the block ends
        row = model.objects.select_for_update().get(pk=conn.pk)
        if row.access_token != stale_token and _fresh(row, margin=timedelta(seconds=30)):
            return _adopt(conn, row)
        used_refresh_token = row.refresh_token
        if not used_refresh_token:
            reason = "No refresh token stored: connect again."
            mark_reconnect(row, reason)
            _adopt(conn, row)
            raise ReconnectRequired(reason)
        if (
            row.status == ConnectionStatus.NEEDS_RECONNECT
        ):  # refused before: not asked again until reconnected
            _adopt(conn, row)
            raise ReconnectRequired(row.last_error or f"{row} needs to be connected again.")
        try:
            token = provider.refresh(used_refresh_token)
        except (TokenRefused, InvalidGrantError) as exc:
            failure = exc
        except OAuth2Error as exc:
            raise TokenRefreshError(f"{provider.name} token refresh failed: {oauth_error_code(exc)}") from exc
        except Exception as exc:  # network errors, non-JSON answers: transient
            raise TokenRefreshError(f"{provider.name} token refresh failed: {exc}") from exc
        else:
            _save_token(row, token, provider)
            log.info("Refreshed %s token for %s", provider.name, row)
            return _adopt(conn, row)
    # A permanent refusal (invalid_grant, unauthorized_client, …): another worker (or an operator reconnecting)
    # may have won the race with this refresh token, its write queued behind our lock. Give that write a moment
    # to land, then re-read once under the lock, so a success is adopted and never overwritten.
    time.sleep(INVALID_GRANT_GRACE)
    with transaction.atomic(durable=True):
        row = model.objects.select_for_update().get(pk=conn.pk)
        if row.refresh_token != used_refresh_token and row.access_token:
            log.info("Lost a %s refresh race for %s; using the winner's token", provider.name, row)
            return _adopt(conn, row)
        # Shown to operators: the OAuth error code only (never the vendor's free text); the description is logged.
        reason = f"{provider.name} refused the refresh token ({oauth_error_code(failure)}); connect again."
        log.warning(
            "%s refused the refresh token of %s: %s", provider.name, row, getattr(failure, "description", "")
        )
        mark_reconnect(row, reason)
    _adopt(conn, row)
    raise ReconnectRequired(reason)


def oauth_error_code(exc):
    """The OAuth error code (RFC 6749 §5.2, e.g. invalid_grant) of a refused request, else the exception's
    class name: what users are shown, never the vendor's free text or anything else from its answer."""
    code = getattr(exc, "error", None)
    return code if isinstance(code, str) and OAUTH_ERROR_CODE.fullmatch(code) else type(exc).__name__


def mark_reconnect(row, reason):
    """Mark the connection (FreshBooksAccount or JiraSite) "Needs reconnect" with `reason` (plain words,
    shown to operators) and send `reconnect_required` (one alert) when it was not so already. Calls on it
    stop until an operator fixes it (tenants.tokens.access_token, connector.transport)."""
    log.error("%s needs reconnect: %s", row, reason)
    changed = (
        type(row)
        .objects.filter(pk=row.pk)
        .exclude(status=ConnectionStatus.NEEDS_RECONNECT, last_error=reason)
        .update(status=ConnectionStatus.NEEDS_RECONNECT, last_error=reason)
    )
    row.status, row.last_error = ConnectionStatus.NEEDS_RECONNECT, reason
    if changed:
        reconnect_required.send(sender=type(row), connection=row)
