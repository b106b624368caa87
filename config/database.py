"""PostgreSQL session settings, applied to every new connection (connected in connector.apps).

`idle_in_transaction_session_timeout` = the django-q2 task timeout (Q_TIMEOUT): a session left idle inside a
transaction for longer than any task may run belongs to a run that is gone, typically on a worker host whose
network was cut while it held row locks across a vendor call (a ledger link, an OAuth token refresh). Its end
of the connection never reaches the server, so without this PostgreSQL keeps the session, and its locks, until
TCP keepalive gives up (about two hours on Linux defaults), and the other hosts' runs of its events wait on those
locks. With it the server ends the session and the events are taken over (docs/scale-out.md).

A run that is alive never meets it: django-q2 stops a task Q_TIMEOUT seconds after it started, before any of its
transactions can have been idle that long. Sessions of other processes (web, commands) idle inside a
transaction for seconds at most. Q_TIMEOUT of 0 or less (no task timeout) leaves the server's setting.
"""

from django.conf import settings


def set_session_timeouts(sender, connection, **kwargs):
    """connection_created receiver: one statement on each new PostgreSQL connection; others are left alone."""
    seconds = int(settings.Q_CLUSTER.get("timeout") or 0)
    if connection.vendor != "postgresql" or seconds <= 0:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('idle_in_transaction_session_timeout', %s, false)", [f"{seconds}s"])
