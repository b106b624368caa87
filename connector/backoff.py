"""How long to wait before asking a vendor again after 429 (or a retried 5xx / network error).

``Retry-After`` is a minimum, never the whole answer: 0, a missing or an unparsable value mean "no specific
wait given", and the wait is then at least about a second, doubling per attempt, with jitter (Jira often sends
``Retry-After: 0``; a request reissued too early "will fail and return the same or longer Retry-After
period" — Atlassian's rate-limiting page). ``X-RateLimit-Reset`` (ISO 8601, e.g. 2026-11-30T05:30Z) is honoured
too. Callers keep their own per-call budget (number of waits and total seconds).
"""

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from django.utils.dateparse import parse_datetime

MIN_WAIT_SECONDS = 1.0
MAX_WAIT_SECONDS = 60.0  # one wait never exceeds this


def _seconds_until(moment, now):
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - now).total_seconds()


def retry_after(value, now=None):
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


def reset_in(value, now=None):
    """Seconds until an ``X-RateLimit-Reset`` moment (ISO 8601, or epoch seconds); 0.0 when absent or unreadable."""
    if value is None:
        return 0.0
    text = str(value).strip()
    now = now or datetime.now(UTC)
    if text.isdigit():
        moment = datetime.fromtimestamp(int(text), UTC) if int(text) > 10**9 else None
    else:
        try:
            moment = parse_datetime(text.replace("Z", "+00:00"))
        except ValueError:
            moment = None
    return max(0.0, _seconds_until(moment, now)) if moment else 0.0


def delay(attempt, headers=None, cap=MAX_WAIT_SECONDS):
    """Seconds to wait after failed attempt number `attempt` (1-based), given the answer's `headers` (or None).

    At least MIN_WAIT_SECONDS·2^(attempt-1) with up to 50 % jitter, at least what Retry-After and
    X-RateLimit-Reset ask for, at most `cap`.
    """
    headers = headers or {}
    growing = min(cap, MIN_WAIT_SECONDS * 2 ** (attempt - 1)) * random.uniform(1.0, 1.5)  # noqa: S311 - jitter
    asked = max(retry_after(headers.get("Retry-After")), reset_in(headers.get("X-RateLimit-Reset")))
    return min(cap, max(growing, asked))
