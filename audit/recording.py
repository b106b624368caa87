"""The audit trail's hook on outbound HTTP: every vendor call made for an event becomes an Attempt."""

from audit.models import Attempt


def record_call(call):
    """Store a connector.http.Call as an audit.Attempt (request and response encrypted by their fields); the
    call keeps the attempt's id (`call.stored["attempt"]`)."""
    attempt = Attempt.objects.create(
        event=call.event,
        actor=call.actor,
        action=call.action,
        request=call.request,
        response=call.response,
        http_status=call.http_status,
        error=call.error,
        duration_ms=call.duration_ms,
    )
    call.stored["attempt"] = attempt.pk
