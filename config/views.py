import logging
from datetime import timedelta

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from django_q.brokers import get_broker

from audit.backlog import queued_backlog
from audit.models import Event
from tenants.models import ConnectionStatus, FreshBooksAccount, JiraSite

log = logging.getLogger(__name__)

BACKLOG_DEGRADED_SECONDS = 300  # an event queued longer than this: the worker is behind or not running
FAILING_WINDOW = timedelta(hours=1)  # failed events counted over this past window


@require_GET
def healthz(request):
    """Liveness and backlog. 503 {"status": "down"} when the database is unreachable; otherwise 200 with
    "status": "ok", or "degraded" and the "reasons" (connections needing a reconnect, events failed in the
    last hour, the oldest queued event older than BACKLOG_DEGRADED_SECONDS, broker unreachable).

    Anyone may ask, so the answer is in generic words: an error's text (database host, port, role; a broker
    URL) goes to the log, never into the answer."""
    reasons = []
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        queued, age = queued_backlog()
        failing = {
            "freshbooks": FreshBooksAccount.objects.filter(status=ConnectionStatus.NEEDS_RECONNECT).count(),
            "jira": JiraSite.objects.filter(status=ConnectionStatus.NEEDS_RECONNECT).count(),
        }
        failed = Event.objects.filter(
            status=Event.Status.FAILED, received_at__gte=timezone.now() - FAILING_WINDOW
        ).count()
    except DatabaseError:
        log.exception("Health check: the database is unreachable")
        return JsonResponse({"status": "down", "database": "unreachable"}, status=503)
    queue = {"queued_events": queued, "oldest_queued_age_seconds": round(age, 3)}
    try:
        queue["broker_backlog"] = get_broker().queue_size()
    except Exception:  # a broker (Redis) outage degrades the report but the web side still works
        log.exception("Health check: the task broker is unreachable")
        queue["broker"] = "unreachable"
        reasons.append("the task broker is unreachable")
    for vendor, count in failing.items():
        if count:
            reasons.append(
                f"{count} {'FreshBooks' if vendor == 'freshbooks' else 'Jira'} connection(s) need a reconnect"
            )
    if failed:
        reasons.append(f"{failed} event(s) failed in the last hour")
    if age > BACKLOG_DEGRADED_SECONDS:
        reasons.append(f"the oldest queued event has waited {round(age)} s (worker behind or stopped)")
    return JsonResponse(
        {
            "status": "degraded" if reasons else "ok",
            "reasons": reasons,
            "database": "ok",
            "connections_failing": failing,
            "failed_events_last_hour": failed,
            "queue": queue,
        }
    )
