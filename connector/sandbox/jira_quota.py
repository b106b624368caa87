"""Jira Cloud's rate limits in the fakes: the hourly points quota, burst limits, per-issue write limits; and
the bulk create endpoint (POST /rest/api/{3|2}/issue/bulk, up to 50 issues; `install_bulk_route`).

One `Quota` may be shared by several FakeJira sites: Tier 1's global pool belongs to the OAuth app, shared by
all of its sites. `install_quota(jira, quota)` puts it in front of a fake's routes:

- Points: an OAuth (Bearer) request costs 1, plus one per object a successful GET returns (the longest list in
  the answer, or 1 for one object); writes cost 1. API-token (Basic) requests are not counted (Jira: "API token
  based traffic is not affected"). The pool (`points` an hour) and, when set, each site's own quota
  (`site_points`) reset at the top of each hour of `clock()` (controllable: tests pass their own clock; `window`
  shortens the "hour", for the benchmark).
  Spent: every OAuth request answers 429 with `RateLimit-Reason: jira-quota-global-based` (or
  `-tenant-based`), `Retry-After` to the reset, and `Beta-RateLimit: "global-app-quota";r=0;t=<s>`.
  Below 20% left every OAuth answer carries `Beta-RateLimit-Policy: "global-app-quota";q=<points>;w=3600` and
  `Beta-RateLimit: "global-app-quota";r=<left>;t=<s to reset>` (`prefix=""` sends them without `Beta-`).
- Burst: `burst={("POST", "issue"): 10}` allows 10 requests a second (all credentials) to that method and
  endpoint (path relative to /rest/api/N/ with ids as {id}); more answer 429 `jira-burst-based`, Retry-After 1.
- Per issue: more than 20 writes in 2 s or 100 in 30 s to one issue answer 429 `jira-per-issue-on-write`.
- `quota.log`: (clock, method, path, status, reason, client address) of every request; `quota.writes[key]`:
  times of the writes to each issue; `exhaust()` spends what is left of this hour's pool (the sandbox page's
  button); `exhaust(seconds)` also refills it that many seconds later (a reset that comes sooner: the
  multi-host run, tests/bench/hosts.py), the 429s' `Retry-After` counting down to then.
"""

import re
import threading
import time
from collections import defaultdict

from connector.sandbox.server import Response

GLOBAL, TENANT = "jira-quota-global-based", "jira-quota-tenant-based"
BURST, PER_ISSUE = "jira-burst-based", "jira-per-issue-on-write"
ISSUE_LIMITS = ((2.0, 20), (30.0, 100))
WRITES = ("POST", "PUT", "DELETE")
REST = re.compile(r"/rest/api/[23]/(?P<rest>.*)")
ISSUE_WRITE = re.compile(r"issue/(?P<key>[A-Za-z][A-Za-z0-9_]*-\d+|\d+)(/|\Z)")
IDS = re.compile(r"(?<=/)([A-Za-z][A-Za-z0-9_]*-\d+|\d+)(?=/|\Z)")
LISTS = ("issues", "values", "worklogs", "issueTypes", "fields", "users")
BULK_MAX = 50


class Quota:
    def __init__(
        self, points=65_000, site_points=None, burst=None, clock=time.time, prefix="Beta-", window=3600
    ):
        self.points, self.site_points, self.burst = points, site_points, dict(burst or {})
        self.window = window  # seconds of Jira's "hour" (the benchmark shortens it)
        self.clock, self.prefix = clock, prefix
        self.lock = threading.Lock()
        self.spent = defaultdict(int)  # hour → pool points; (site, hour) → the site's points
        self.calls = defaultdict(list)  # (method, endpoint) → times, for the burst limits
        self.writes = defaultdict(list)  # issue key → write times
        self.log = []
        self.refill_at = None  # clock() when an `exhaust(seconds)` ends (the pool is then full again)

    def hour(self, now):
        return int(now // self.window)

    def reset_in(self, now):
        """Whole seconds (≥ 1) until the pool is full again: the next "hour", or an earlier refill."""
        reset = (self.hour(now) + 1) * self.window
        if self.refill_at is not None and now < self.refill_at:
            reset = min(reset, self.refill_at)
        return max(1, int(reset - now + 0.999))

    def exhaust(self, seconds=None):
        """Spend what is left of this hour's pool (the sandbox's "exhaust the quota"); with `seconds`, the pool
        is refilled that many seconds from now (instead of at the top of the hour)."""
        with self.lock:
            now = self.clock()
            self.spent[self.hour(now)] = self.points
            self.refill_at = now + seconds if seconds else None

    def refill(self):
        """The pool full again (the sandbox's "refill it")."""
        with self.lock:
            self.spent.clear()
            self.refill_at = None

    def _refilled(self, now):
        """Refill when an `exhaust(seconds)` has ended (called under the lock)."""
        if self.refill_at is not None and now >= self.refill_at:
            self.spent.clear()
            self.refill_at = None

    def left(self, now=None):
        now = self.clock() if now is None else now
        return max(0, self.points - self.spent[self.hour(now)])

    def headers(self, name, left, limit, now):
        if left >= 0.2 * limit:
            return {}
        return {
            f"{self.prefix}RateLimit-Policy": f'"{name}";q={limit};w={self.window}',
            f"{self.prefix}RateLimit": f'"{name}";r={left};t={self.reset_in(now)}',
        }

    def refusal(self, site, request, oauth):
        """The 429 answer this request gets, or None (then it is counted as a call/write)."""
        now = self.clock()
        found = REST.match(request.path)
        rest = found["rest"] if found else ""
        endpoint = IDS.sub("{id}", "/" + rest)[1:]
        with self.lock:
            self._refilled(now)
            hour = self.hour(now)
            if oauth and self.spent[hour] >= self.points:
                return self._quota_429(GLOBAL, "global-app-quota", now)
            if oauth and self.site_points and self.spent[(site, hour)] >= self.site_points:
                return self._quota_429(TENANT, "tenant-app-quota", now)
            limit = self.burst.get((request.method, endpoint))
            if limit:
                recent = [t for t in self.calls[(request.method, endpoint)] if t > now - 1.0]
                self.calls[(request.method, endpoint)] = recent
                if len(recent) >= limit:
                    return Response(429, _body(), {"RateLimit-Reason": BURST, "Retry-After": "1"})
                recent.append(now)
            found = ISSUE_WRITE.match(rest) if request.method in WRITES else None
            if found:
                writes = self.writes[found["key"]]
                times = [t for t in writes[-100:] if t > now - 30.0]
                if any(len([t for t in times if t > now - span]) >= most for span, most in ISSUE_LIMITS):
                    return Response(429, _body(), {"RateLimit-Reason": PER_ISSUE, "Retry-After": "1"})
                writes.append(now)
                del writes[:-10_000]  # the sandbox runs for days
        return None

    def _quota_429(self, reason, name, now):
        return Response(
            429,
            _body(),
            {
                "RateLimit-Reason": reason,
                "Retry-After": str(self.reset_in(now)),
                f"{self.prefix}RateLimit": f'"{name}";r=0;t={self.reset_in(now)}',
            },
        )

    def charge(self, site, request, response):
        """Count the points of an answered OAuth request; returns the quota headers to send with it."""
        now = self.clock()
        points = cost(request.method, response)
        with self.lock:
            hour = self.hour(now)
            self.spent[hour] += points
            self.spent[(site, hour)] += points
            left = max(0, self.points - self.spent[hour])
            extra = self.headers("global-app-quota", left, self.points, now)
            if self.site_points:
                site_left = max(0, self.site_points - self.spent[(site, hour)])
                if site_left < left:
                    extra = self.headers("tenant-app-quota", site_left, self.site_points, now)
        return extra


def _body():
    return {"errorMessages": ["Rate limit exceeded."], "errors": {}}


def cost(method, response):
    if method in WRITES or response.status >= 400:
        return 1
    body = response.body
    if isinstance(body, list):
        return 1 + len(body)
    if isinstance(body, dict):
        sizes = [len(body[name]) for name in LISTS if isinstance(body.get(name), list)]
        return 1 + (max(sizes) if sizes else 1)
    return 1


def install_quota(jira, quota):
    """Put `quota` in front of the fake's routes (all of them: install it last)."""
    jira.quota = quota
    site = id(jira)
    plain_dispatch = jira.dispatch

    def dispatch(request):
        oauth = request.headers.get("authorization", "").startswith("Bearer ")
        prefix = f"/ex/jira/{jira.cloud_id}" if jira.cloud_id else None
        if prefix and request.path.startswith(prefix):
            request.path = request.path[len(prefix) :]
        if request.path.startswith("/rest/") and jira.authorized(request):
            refused = quota.refusal(site, request, oauth)
            if refused is not None:
                jira.record(request)
                _log(quota, request, refused)
                return refused
        response = plain_dispatch(request)
        if oauth and request.path.startswith("/rest/") and response.status != 401:
            response.headers.update(quota.charge(site, request, response))
        _log(quota, request, response)
        return response

    jira.dispatch = dispatch
    return jira


def install_bulk_route(jira):
    """POST issue/bulk: up to 50 create bodies, each created as POST issue would (install_issue_routes calls it)."""

    @jira.api("POST", "issue/bulk")
    def bulk_create(request):
        updates = (request.json() or {}).get("issueUpdates") or []
        if not updates or len(updates) > BULK_MAX:
            return Response(
                400, {"errorMessages": [f"Between 1 and {BULK_MAX} issues per request."], "errors": {}}
            )
        issues, failures = [], []
        for number, update in enumerate(updates):
            answer = jira.create_one(update, request.path.rsplit("/", 1)[0])
            if answer.status == 201:
                issues.append(answer.body)
            else:
                failures.append(
                    {"status": answer.status, "failedElementNumber": number, "elementErrors": answer.body}
                )
        return Response(201 if issues else 400, {"issues": issues, "errors": failures})

    jira.routes.insert(0, jira.routes.pop())  # before issue/{key}
    return jira


def _log(quota, request, response):
    with quota.lock:
        reason = response.headers.get("RateLimit-Reason", "")
        quota.log.append(
            (quota.clock(), request.method, request.path, response.status, reason, request.client)
        )
