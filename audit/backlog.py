"""The event backlog: how many events wait in the queue and for how long (for /healthz/, /metrics, alerts)."""

from django.db.models import Count, Min
from django.utils import timezone

from audit.models import Event


def queued_backlog(tenant=None):
    """(queued events, age in seconds of the oldest one — 0.0 when none), for one tenant or all."""
    queued = Event.objects.filter(status=Event.Status.QUEUED)
    if tenant is not None:
        queued = queued.filter(tenant=tenant)
    found = queued.aggregate(count=Count("id"), oldest=Min("received_at"))
    age = (timezone.now() - found["oldest"]).total_seconds() if found["oldest"] else 0.0
    return found["count"], age
