"""The retry and back-off policy, in one place.

Three levels, from the inside out:

1. Inside one call (connector.jira.client, connector.freshbooks.client): 429 is flow control, waited out
   (`call_delay`: Retry-After and X-RateLimit-Reset are minimums; 0, missing or unreadable means at least
   ~1 s, doubling with jitter) up to MAX_RATE_LIMIT_WAITS times; idempotent calls (GET/PUT/DELETE)
   are also retried on 5xx and network errors, IDEMPOTENT_TRIES in all. A POST is never re-sent there
   (Jira has no idempotency key: the ledger decides). All waiting in one call stays under
   MAX_TOTAL_WAIT_SECONDS, well below the django-q2 task timeout (Q_TIMEOUT, 300 s): past it the call
   fails as transient instead of being killed mid-wait.
2. Inside the ledger (connector.ledger): an in-doubt create is looked up by its label, repeated after
   SEARCH_RETRY_DELAYS because Jira's search lags behind writes.
3. Across tasks (connector.tasks): a transient failure of an event is re-queued with `task_retry_delay`
   (~1, 2, 4, 8 minutes) at most MAX_AUTO_ATTEMPTS times when the tenant has auto retry on; otherwise it
   waits for a replay. django-q2 itself retries only tasks that raise (Q_RETRY, `max_attempts` in settings),
   which the FreshBooks verification handshake uses for transient failures.
"""

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from django.conf import settings
from django.utils.dateparse import parse_datetime

# 1. One Jira call
MAX_RATE_LIMIT_WAITS = 6
MIN_WAIT_SECONDS = 1.0
MAX_WAIT_SECONDS = 60.0
MAX_TOTAL_WAIT_SECONDS = 120.0
IDEMPOTENT = frozenset({"GET", "PUT", "DELETE", "HEAD"})
IDEMPOTENT_TRIES = 3

# 1b. One page of a FreshBooks listing (connector.reconcile): 429/5xx/network retried, waiting call_delay
LIST_PAGE_TRIES = 6

# 2. The ledger's look-up of an in-doubt create
SEARCH_RETRY_DELAYS = (1.0, 2.0, 4.0)

# 3. Across tasks
MAX_AUTO_ATTEMPTS = 5
RETRY_BASE_SECONDS = 60
RETRY_MAX_SECONDS = 3600


def retry_after_seconds(value, now=None):
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date); 0.0 when absent or unreadable."""
    if value is None:
        return 0.0
    text = str(value).strip()
    now = now or datetime.now(UTC)
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = _seconds_until(parsedate_to_datetime(text), now)
        except (TypeError, ValueError, IndexError):
            return 0.0
    return seconds if seconds == seconds and seconds > 0 else 0.0  # nan and negatives: no wait given


def reset_seconds(value, now=None):
    """Seconds until an ``X-RateLimit-Reset`` moment (ISO 8601, or epoch seconds); 0.0 when absent or unreadable."""
    if value is None:
        return 0.0
    text = str(value).strip()
    now = now or datetime.now(UTC)
    moment = None
    if text.isdigit():
        moment = datetime.fromtimestamp(int(text), UTC) if int(text) > 10**9 else None
    else:
        try:
            moment = parse_datetime(text.replace("Z", "+00:00"))
        except ValueError:
            moment = None
    return max(0.0, _seconds_until(moment, now)) if moment else 0.0


def _seconds_until(moment, now):
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - now).total_seconds()


def call_delay(attempt, retry_after=None, budget=MAX_WAIT_SECONDS, rate_limit_reset=None):
    """Seconds to wait before try `attempt + 1` of one call.

    At least MIN_WAIT_SECONDS·2^(attempt-1) with up to 50 % jitter (1–1.5 s, 2–3 s, 4–6 s, …), and at least what
    `retry_after` (the Retry-After header: seconds or an HTTP date) and `rate_limit_reset` (Jira's
    X-RateLimit-Reset, ISO 8601) ask for: Retry-After is a minimum, and 0 means "no specific wait given" (Jira
    sends it often; a request reissued too early "will fail and return the same or longer Retry-After period").
    Never more than MAX_WAIT_SECONDS nor the remaining `budget`.
    """
    growing = min(MAX_WAIT_SECONDS, MIN_WAIT_SECONDS * 2 ** (attempt - 1)) * random.uniform(1.0, 1.5)  # noqa: S311
    asked = max(retry_after_seconds(retry_after), reset_seconds(rate_limit_reset))
    return max(0.0, min(max(growing, asked), MAX_WAIT_SECONDS, budget))


def may_retry_call(method, attempt, waited, status=None):
    """Whether one Jira call should be tried again after a 5xx/429 answer (`status`) or no answer (None)."""
    if waited >= MAX_TOTAL_WAIT_SECONDS:
        return False
    if status == 429:
        return attempt <= MAX_RATE_LIMIT_WAITS
    return method in IDEMPOTENT and attempt < IDEMPOTENT_TRIES and (status is None or status >= 500)


def task_retry_delay(attempts):
    """Exponential back-off with jitter between automatic retries of an event: ~1, 2, 4, 8 … min, at most 1 h."""
    base = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return int(base * random.uniform(0.8, 1.2))  # noqa: S311 - jitter


def task_timeout():
    """Seconds django-q2 lets a task run (Q_TIMEOUT): a run older than this has been stopped."""
    return int(settings.Q_CLUSTER.get("timeout") or 300)
