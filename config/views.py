from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET
from django_q.brokers import get_broker

from audit.backlog import queued_backlog


@require_GET
def healthz(request):
    """Liveness and backlog: database reachability, queued events and the age of the oldest one."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        queued, age = queued_backlog()
        broker_backlog = get_broker().queue_size()
    except DatabaseError as exc:
        return JsonResponse(
            {"status": "error", "database": "unreachable", "detail": str(exc)[:200]}, status=503
        )
    except Exception as exc:  # a broker (Redis) outage degrades the report but the web side still works
        return JsonResponse({"status": "degraded", "database": "ok", "queue": {"error": str(exc)[:200]}})
    return JsonResponse(
        {
            "status": "ok",
            "database": "ok",
            "queue": {
                "queued_events": queued,
                "broker_backlog": broker_backlog,
                "oldest_queued_age_seconds": round(age, 3),
            },
        }
    )
