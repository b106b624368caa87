"""Pause and resume a tenant's sync to Jira.

While a tenant is paused its FreshBooks deliveries are still accepted, verified and stored (the webhook endpoints
do not look at the pause): the worker holds each event instead of processing it — connector.tasks.process_event
puts it into waiting with the reason "tenant paused" and no time (connector.waiting), so nothing is sent to Jira.
Replays and automatic retries of a paused tenant's events are held the same way. `resume` queues the held events
again, oldest first, in the order they were received.

Who paused, when and why is kept on the tenant (`paused_at`, `paused_by`, `pause_note`); who resumed is logged.
Used by the tenant admin's actions, `manage.py pause_tenant` and the operator API.
"""

import logging

from django.db import transaction
from django.utils import timezone

from audit.models import Event
from connector import tasks, waiting
from tenants.models import Tenant

log = logging.getLogger(__name__)

MAX_NOTE = 1000  # characters of the note kept


def pause(tenant, *, actor, note=""):
    """Pause `tenant` (a Tenant). Returns True, or False when it was paused already (then nothing changes:
    the first pause's time, actor and note stay). `actor`: "admin:<user>", "command:<user>", "api:<user>"."""
    paused = Tenant.objects.filter(pk=tenant.pk, paused_at__isnull=True).update(
        paused_at=timezone.now(), paused_by=actor[:150], pause_note=(note or "").strip()[:MAX_NOTE]
    )
    tenant.refresh_from_db(fields=["paused_at", "paused_by", "pause_note"])
    if paused:
        log.info("Tenant %s paused by %s", tenant.slug, actor)
    return bool(paused)


def held(tenant):
    """The tenant's events held by the pause (waiting, "tenant paused"), oldest first."""
    return Event.objects.filter(
        tenant=tenant, status=Event.Status.WAITING, wait_reason=waiting.TENANT_PAUSED
    ).order_by("received_at", "id")


def resume(tenant, *, actor):
    """Resume `tenant`: its held events are queued again in the order received. Returns how many were queued,
    or None when the tenant was not paused (nothing changes)."""
    with transaction.atomic():
        resumed = Tenant.objects.filter(pk=tenant.pk, paused_at__isnull=False).update(
            paused_at=None, paused_by="", pause_note=""
        )
    tenant.refresh_from_db(fields=["paused_at", "paused_by", "pause_note"])
    if not resumed:
        return None
    queued = tasks.resume(held(tenant), actor=actor)
    log.info("Tenant %s resumed by %s: %d held event(s) queued", tenant.slug, actor, len(queued))
    return len(queued)


def status(tenant):
    """One line for pages and commands: "paused since 2026-12-05 09:10 UTC by admin:ann — note (3 held)" or
    "running"."""
    if tenant.paused_at is None:
        return "running"
    text = f"paused since {tenant.paused_at:%Y-%m-%d %H:%M %Z} by {tenant.paused_by or 'unknown'}"
    if tenant.pause_note:
        text += f" — {tenant.pause_note}"
    return f"{text} ({held(tenant).count()} event(s) held)"
