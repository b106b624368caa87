"""The retry and back-off policy, in one place.

Three levels, from the inside out:

1. Inside one Jira call (connector.jira.client): 429 is flow control, waited out with `Retry-After` (else
   exponential back-off with jitter) up to MAX_RATE_LIMIT_WAITS times; idempotent calls (GET/PUT/DELETE)
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

from django.conf import settings

# 1. One Jira call
MAX_RATE_LIMIT_WAITS = 6
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


def call_delay(attempt, retry_after=None, budget=MAX_WAIT_SECONDS):
    """Seconds to wait before try `attempt + 1` of one call: `Retry-After` (seconds) when given and readable,
    else 2**attempt with jitter; never more than MAX_WAIT_SECONDS nor the remaining `budget`."""
    try:
        delay = float(retry_after) if retry_after is not None else None
    except ValueError:
        delay = None
    if delay is None:
        delay = min(MAX_WAIT_SECONDS, 2**attempt) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter
    return max(0.0, min(delay, MAX_WAIT_SECONDS, budget))


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
