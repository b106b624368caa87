"""The operator API's tokens: made with a random secret that is shown once, stored as its SHA-256 digest.

A secret reads `mlc_<prefix>_<43 url-safe characters>` (32 random bytes). `issue` returns (ApiToken, secret);
`find` returns the ApiToken a presented secret belongs to, or raises TokenRefused with the reason a caller may
be told. The digest is compared with hmac.compare_digest, and an unknown prefix is compared against a dummy
digest too, so the answer takes as long whether or not the prefix exists.
"""

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from tenants.models import ApiToken

SHAPE = re.compile(r"mlc_([A-Za-z0-9]{8})_[A-Za-z0-9_-]{43}")
ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per token
_DUMMY = hashlib.sha256(b"no such token").hexdigest()


class TokenRefused(Exception):
    """The presented secret is not (or no longer) a valid token; str() is safe to show the caller."""


def digest(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


def save_new(token):
    """Give the unsaved ApiToken `token` a prefix and the digest of a new secret, save it; returns the secret
    (not stored: show it now or never)."""
    for _ in range(5):  # a prefix collision (1 in 62**8 per pair) is retried with a new secret
        prefix = "".join(secrets.choice(ALPHABET) for _ in range(8))
        secret = f"mlc_{prefix}_{secrets.token_urlsafe(32)}"
        token.prefix, token.digest = prefix, digest(secret)
        try:
            with transaction.atomic():
                token.save()
        except IntegrityError:
            continue
        return secret
    raise RuntimeError("could not draw a unique token prefix")


def issue(user, name, expires_at=None):
    """Make a token for `user`; returns (ApiToken, secret)."""
    token = ApiToken(user=user, name=name, expires_at=expires_at)
    return token, save_new(token)


def find(secret, now=None):
    """The ApiToken of `secret` (its user loaded), last use noted; raises TokenRefused."""
    now = now or timezone.now()
    match = SHAPE.fullmatch(secret or "")
    token = ApiToken.objects.select_related("user").filter(prefix=match.group(1)).first() if match else None
    if not hmac.compare_digest(token.digest if token else _DUMMY, digest(secret or "")) or token is None:
        raise TokenRefused("Invalid token.")
    if token.revoked_at is not None:
        raise TokenRefused("Token revoked.")
    if token.expires_at is not None and token.expires_at <= now:
        raise TokenRefused("Token expired.")
    if not (token.user.is_active and token.user.is_staff):
        raise TokenRefused("User inactive or not staff.")
    if token.last_used_at is None or token.last_used_at <= now - TOUCH_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def revoke(tokens, actor):
    """Revoke the not-yet-revoked tokens of the queryset `tokens`; returns how many."""
    return tokens.filter(revoked_at__isnull=True).update(revoked_at=timezone.now(), revoked_by=actor[:150])
