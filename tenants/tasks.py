"""Scheduled upkeep of OAuth connections: refresh tokens that sat idle so the grants do not lapse.

Atlassian's rotating refresh tokens expire after 90 days without use; refreshing every connection that was
not refreshed for IDLE_AFTER keeps quiet tenants connected. It goes through tokens.refresh, so it takes the
same row lock as the workers and never burns a refresh token another worker is using.
"""

import logging
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from tenants import tokens
from tenants.models import ConnectionStatus, FreshBooksAccount, JiraSite

log = logging.getLogger(__name__)

IDLE_AFTER = timedelta(days=7)


def idle_connections(now=None):
    cutoff = (now or timezone.now()) - IDLE_AFTER
    idle = Q(status=ConnectionStatus.CONNECTED) & (
        Q(last_refreshed_at__isnull=True) | Q(last_refreshed_at__lt=cutoff)
    )
    found = [
        *FreshBooksAccount.objects.filter(idle),
        *JiraSite.objects.filter(idle, auth_method=JiraSite.AuthMethod.OAUTH2),
    ]
    # Encrypted fields cannot be filtered in SQL.
    return [conn for conn in found if conn.refresh_token]


def refresh_idle_tokens():
    """Refresh every connected OAuth connection idle for IDLE_AFTER; returns counts for the task result."""
    counts = {"refreshed": 0, "needs_reconnect": 0, "failed": 0}
    for conn in idle_connections():
        try:
            tokens.refresh(conn, stale_token=conn.access_token)
        except tokens.ReconnectRequired:
            counts["needs_reconnect"] += 1
        except tokens.TokenRefreshError as exc:
            log.warning("Idle refresh of %s failed (will retry next run): %s", conn, exc)
            counts["failed"] += 1
        else:
            counts["refreshed"] += 1
    return counts
