"""Jira Cloud's rate limits, met without failing events: the policy a Jira client consults before each request
and on each answer (connector.jira.client).

Source: https://developer.atlassian.com/cloud/jira/platform/rate-limiting/ (docs/quota.md sums it up). Jira
enforces, at the same time: an hourly points quota for OAuth 2.0 (3LO) apps (Tier 1: 65,000 points an hour for the
app, shared by all of its sites, reset at the top of each UTC hour; API-token traffic is not counted), burst
limits per site, endpoint and method, and 20 writes per 2 s / 100 per 30 s on one issue. A 429 names the limit in
`RateLimit-Reason`.

Each 429 by its class (`classify`):
- *quota* (`jira-quota-global-based`, `jira-quota-tenant-based`, and any reason we do not know): a pause kept in
  the shared store (connector.jira.quota_store: the database, or Redis) that every worker sees before calling.
  A global-pool reason on an OAuth site pauses the pool ("pool:oauth", every OAuth site); otherwise only that
  site. API-token sites never look at the OAuth pool. Until: Retry-After, or the reset Jira names, and at least
  the next top of the hour when Jira names none.
- *burst* (`jira-burst-based`, or no reason at all, as older Jira and Data Center send): that site's endpoint and
  method pause for Retry-After (≥ 1 s, doubling), then are paced (BURST_INTERVAL) for BURST_SLOW_SECONDS.
- *per-issue* (`jira-per-issue-on-write`): the issue pauses for Retry-After; writes to one issue are always paced
  under ISSUE_WINDOWS, shared by every worker.
A wait that fits in what is left of the call's budget (IN_CALL_BUDGET seconds; QUOTA_IN_CALL for a quota pause,
so that workers stay free for the sites the pause does not concern) is slept; a longer one raises
connector.errors.MustWait, so the event waits (connector.waiting) and resumes by itself: never a failure.

Points: each answer's cost is estimated from the published model (`cost`) and counted per tenant and pool per
UTC hour (connector.QuotaUsage, mlc_jira_points_total); Jira's own remaining figure (`Beta-RateLimit` /
`RateLimit`, sent below ~20% left) is kept per pool. Below LOW_FRACTION left, bulk work (reconcile, backfill,
bulk replay: `Policy(bulk=True)`) waits for the reset, so the rest of the hour goes to live events.
"""

import functools
import re
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

from django.db import IntegrityError, connection, transaction
from django.db.models import F

from audit import metrics
from connector import retry, waiting
from connector.errors import MustWait
from connector.jira.quota_store import latest, store
from connector.models import QuotaUsage
from connector.transport import RateLimitPolicy
from tenants.models import Tenant

GLOBAL, TENANT = "jira-quota-global-based", "jira-quota-tenant-based"
BURST, PER_ISSUE = "jira-burst-based", "jira-per-issue-on-write"
REASON_HEADERS = (
    "RateLimit-Reason",
    "Beta-RateLimit-Reason",
    "X-Beta-RateLimit-Reason",
    "X-RateLimit-Reason",
)
POOL = "pool:oauth"
IN_CALL_BUDGET = retry.MAX_WAIT_SECONDS  # seconds one call may wait in all; longer: the event waits
QUOTA_IN_CALL = 5.0  # a quota pause longer than this is not slept: the worker is freed for other tenants
ISSUE_WINDOWS = ((2.0, 18), (30.0, 95))  # under Jira's 20 writes / 2 s and 100 / 30 s on one issue
BURST_SLOW_SECONDS = 60.0
BURST_INTERVAL = 0.05  # seconds between calls to an endpoint that answered a burst 429 (≤ 20/s)
LOW_FRACTION = 0.2
WRITES = frozenset({"POST", "PUT", "DELETE"})
ISSUE_WRITE = re.compile(r"issue/(?P<key>[A-Za-z][A-Za-z0-9_]*-\d+|\d+)(/|\Z)")
ID_SEGMENT = re.compile(r"(?<=/)([A-Za-z][A-Za-z0-9_]*-\d+|\d+)(?=/|\Z)")
LISTS = ("issues", "values", "worklogs", "issueTypes", "fields", "users")
SF_ITEM = re.compile(r'\s*"?(?P<name>[^";,]+)"?(?P<params>(;\s*[A-Za-z-]+=[^;,]*)*)\s*(,|\Z)')


def clock():
    """Epoch seconds now (tests replace it to move through Jira's hours)."""
    return time.time()


def reason_of(headers):
    """Jira's RateLimit-Reason (any of its prefixed spellings), or ""."""
    for name in REASON_HEADERS:
        if headers.get(name):
            return str(headers[name]).strip()
    return ""


def classify(reason):
    """ "quota", "burst" or "per_issue" for a 429's reason: unknown reasons count as quota (the safe side: the
    event waits); no reason at all is a per-second limit (older Jira Cloud answers, Data Center)."""
    if reason == BURST or not reason:
        return "burst"
    if reason == PER_ISSUE:
        return "per_issue"
    return "quota"


def parse_policies(headers):
    """{policy name: {"q": limit, "w": window s, "r": remaining, "t": seconds to reset}} from `Beta-RateLimit-Policy`,
    `RateLimit-Policy`, `Beta-RateLimit`, `RateLimit` (and `X-` spellings), which a response may mix; items are
    `"global-app-quota";q=65000;w=3600` separated by commas. Unreadable parts are skipped."""
    found = {}
    for base in ("RateLimit-Policy", "RateLimit"):
        for name in (base, f"Beta-{base}", f"X-Beta-{base}"):
            text = headers.get(name)
            if not text:
                continue
            for item in SF_ITEM.finditer(str(text)):
                values = found.setdefault(item["name"].strip(), {})
                for param in filter(None, item["params"].split(";")):
                    key, _, value = param.strip().partition("=")
                    try:
                        values[key] = int(float(value.strip().strip('"')))
                    except ValueError:
                        continue
    return found


def endpoint(path):
    """A path with its ids replaced, for the burst scope: "issue/FIN-1/worklog" → "issue/{id}/worklog"."""
    return ID_SEGMENT.sub("{id}", "/" + path.split("?", 1)[0].lstrip("/"))[1:]


def issue_written(method, path):
    """The issue key (or id) a write goes to, or None (reads, creates, bulk create, other resources)."""
    if method not in WRITES:
        return None
    found = ISSUE_WRITE.match(path.lstrip("/"))
    return found["key"] if found else None


def cost(method, status, body):
    """Points one answer costs (Jira's model): 1 a request, plus one per object a successful read returns
    (the longest of the answer's lists, or 1 for a single object). Writes cost 1."""
    if method in WRITES or status >= 400 or body is None:
        return 1
    if isinstance(body, list):
        return 1 + len(body)
    if isinstance(body, dict):
        sizes = [len(body[name]) for name in LISTS if isinstance(body.get(name), list)]
        return 1 + (max(sizes) if sizes else 1)
    return 1


def next_reset(now):
    """Epoch seconds of the next top of a UTC hour after `now`."""
    return (int(now) // 3600 + 1) * 3600


def hour_of(now):
    return datetime.fromtimestamp(int(now) // 3600 * 3600, UTC)


def pool_of(site):
    if site.deployment != site.Deployment.CLOUD:
        return "data_center"
    return "oauth" if site.auth_method == site.AuthMethod.OAUTH2 else "api_token"


@functools.lru_cache(maxsize=4096)
def tenant_slug(tenant_id):
    """The tenant's slug, for the metric's label (kept per process: slugs do not change in practice)."""
    return Tenant.objects.filter(pk=tenant_id).values_list("slug", flat=True).first() or str(tenant_id)


def count_points(site, points, now):
    """Add `points` (one request) to the site's tenant and pool for this UTC hour, and to mlc_jira_points_total."""
    pool, hour = pool_of(site), hour_of(now)
    metrics.jira_points(pool, tenant_slug(site.tenant_id), points)
    rows = QuotaUsage.objects.filter(hour=hour, tenant_id=site.tenant_id, pool=pool)
    if rows.update(points=F("points") + points, requests=F("requests") + 1):
        return
    try:
        with transaction.atomic():
            QuotaUsage.objects.create(
                hour=hour, tenant_id=site.tenant_id, pool=pool, points=points, requests=1
            )
    except IntegrityError:  # another worker created it meanwhile
        rows.update(points=F("points") + points, requests=F("requests") + 1)


def low_until(scope, now):
    """The next reset when Jira's last remaining figure for `scope` (this hour) is below LOW_FRACTION, else None."""
    kept = store().remaining(scope)
    if not kept:
        return None
    remaining, limit, when = kept
    if not limit or int(when) // 3600 != int(now) // 3600 or remaining >= LOW_FRACTION * limit:
        return None
    return next_reset(now)


def later(func, *args):
    """Run a write of the shared state now, or — when the caller holds a database transaction open (the ledger
    keeps a link's row locked during its Jira call) — right after it commits: rows of the shared state are
    never held locked across a Jira call, so two workers cannot deadlock on them. (Inside a test case's own
    transaction, which never commits, it runs now.)"""
    blocks = connection.atomic_blocks
    if blocks and not getattr(blocks[0], "_from_testcase", False):
        transaction.on_commit(lambda: func(*args))
    else:
        func(*args)


def when(until):
    return f"{datetime.fromtimestamp(until, UTC):%H:%M} UTC"


class Policy:
    """The rate-limit policy of one Jira client (one site). `bulk`: the client does bulk work (it yields to live
    work when the quota runs low). `sleep` is injectable, and the module's `clock` (epoch seconds) too, for tests."""

    def __init__(self, site, *, bulk=False, sleep=time.sleep):
        self.site, self.bulk, self.sleep = site, bulk, sleep
        self.waited = 0.0
        self.burst_waits = 0
        self.slept_until = 0.0  # the clock is at least here after a sleep (also with an injected sleep)
        self.retrying = False  # the next try is a retry of the same call (after a 429)

    def start(self):
        """A new call: a fresh in-call budget."""
        self.waited, self.burst_waits = 0.0, 0

    def now(self):
        return max(clock(), self.slept_until)

    @property
    def oauth(self):
        return pool_of(self.site) == "oauth"

    def site_scope(self):
        return f"site:{self.site.pk}"

    def quota_scopes(self):
        return [POOL, self.site_scope()] if self.oauth else [self.site_scope()]

    def burst_scope(self, method, path):
        return f"burst:{self.site.pk}:{method} {endpoint(path)}"

    def issue_scope(self, key):
        return f"issue:{self.site.pk}:{key}"

    def _wait(self, seconds, until, reason, detail, sleep=True):
        """Sleep `seconds` (or, with sleep=False, leave the sleeping to the caller) when they fit in the call's
        budget (QUOTA_IN_CALL for the quota, else IN_CALL_BUDGET); else raise MustWait (the event waits).
        Returns the seconds (0.0 when none)."""
        if seconds <= 0:
            return 0.0
        budget = QUOTA_IN_CALL if reason == waiting.QUOTA else IN_CALL_BUDGET
        if self.waited + seconds > budget:
            raise MustWait(detail, until=datetime.fromtimestamp(until, UTC), reason=reason, status=429)
        if sleep:
            self.sleep(seconds)
        self.waited += seconds
        self.slept_until = max(self.slept_until, until)
        return seconds

    def before(self, method, path):
        """Consulted before each request: wait out (or raise MustWait for) a pause under one of its scopes, wait
        for the issue's write pacing and a slowed endpoint's interval."""
        now = self.now()
        burst = self.burst_scope(method, path)
        key = issue_written(method, path)
        scopes = [*self.quota_scopes(), burst] + ([self.issue_scope(key)] if key else [])
        found = store().pauses([*scopes, burst + ":slow"], now)  # one read of the store per call
        slowed = found.pop(burst + ":slow", None)
        paused = latest(found)
        if paused:
            until, reason = paused
            quota = classify(reason) == "quota"
            self._wait(
                until - now,
                until,
                waiting.QUOTA if quota else waiting.RETRY_AFTER,
                f"Jira's quota is spent until {when(until)} ({reason})"
                if quota
                else f"Jira asked to wait until {when(until)} ({reason or 'rate limit'})",
            )
            now = self.now()
        if self.bulk:
            for scope in self.quota_scopes():
                until = low_until(scope, now)
                if until:
                    raise MustWait(
                        f"Jira's quota is below {LOW_FRACTION:.0%}: bulk work waits for the reset at {when(until)}",
                        until=datetime.fromtimestamp(until, UTC),
                        reason=waiting.QUOTA,
                    )
        if key:
            delay = store().reserve(self.issue_scope(key), ISSUE_WINDOWS, now)
            self._wait(
                delay, now + delay, waiting.RETRY_AFTER, f"writes to {key} are paced (Jira's per-issue limit)"
            )
        if slowed:
            delay = store().reserve(burst, (), now, interval=BURST_INTERVAL)
            self._wait(
                delay, now + delay, waiting.RETRY_AFTER, f"{method} {endpoint(path)} is slowed (burst limit)"
            )

    def after(self, method, path, status, headers, body=None, sleep=True):
        """Consulted on each answer: count its points, keep Jira's remaining figure; for a 429 keep the pause its
        class asks for and return the seconds to wait before trying again (slept by the caller, within the
        budget; with sleep=False the caller sleeps them), or raise MustWait when that is longer than the call may
        wait. None when not a 429."""
        now = self.now()
        if status != 429:  # a refused request spends nothing
            later(count_points, self.site, cost(method, status, body), now)
        for name, values in parse_policies(headers).items():
            if "r" in values:
                later(store().remember, self.pool_scope(name), values["r"], values.get("q"))
        if status != 429:
            return None
        reason = reason_of(headers)
        kind = classify(reason)
        asked = max(
            retry.retry_after_seconds(headers.get("Retry-After")),
            retry.reset_seconds(headers.get("X-RateLimit-Reset")),
            max((v.get("t", 0) for v in parse_policies(headers).values()), default=0),
        )
        if kind == "quota":
            until = now + asked if asked > 0 else next_reset(now)
            scope = POOL if reason == GLOBAL and self.oauth else self.site_scope()
            later(store().pause, scope, until, reason)
            metrics.jira_quota_pause("pool" if scope == POOL else "site")
            detail = f"Jira's quota is spent until {when(until)} ({reason})"
            return self._wait(until - now, until, waiting.QUOTA, detail, sleep)
        self.burst_waits += 1
        until = now + max(asked, retry.call_delay(self.burst_waits))  # ≥ 1 s, doubling, with jitter
        if kind == "per_issue":
            key = issue_written(method, path)
            scope = self.issue_scope(key) if key else self.burst_scope(method, path)
        else:
            scope = self.burst_scope(method, path)
            later(store().pause, scope + ":slow", now + BURST_SLOW_SECONDS, reason)
        later(store().pause, scope, until, reason)
        detail = f"Jira asked to wait until {when(until)} ({reason or '429'})"
        return self._wait(until - now, until, waiting.RETRY_AFTER, detail, sleep)

    def pool_scope(self, policy):
        """Where Jira's remaining figure of `policy` is kept: the OAuth pool, or the site."""
        return POOL if policy.startswith("global") and self.oauth else self.site_scope()


REST_PATH = re.compile(r"/rest/api/[^/]+/(?P<path>[^?]*)")


def path_of(url):
    """The path relative to /rest/api/N/ ("issue/FIN-1/worklog"), or the URL's path for other APIs."""
    found = REST_PATH.search(url)
    return found["path"] if found else urlsplit(url).path


class JiraRateLimit(RateLimitPolicy):
    """Jira's limits on the transport's hooks (connector.transport.RateLimitPolicy): one Policy per client,
    its in-call budget renewed for every call (not for the retries of a 429)."""

    @staticmethod
    def policy(client):
        found = getattr(client, "_quota_policy", None)
        if found is None:
            found = client._quota_policy = Policy(client.site, bulk=client.bulk, sleep=client.sleep)
        return found

    def before_request(self, client, method, url):
        policy = self.policy(client)
        if not policy.retrying:
            policy.start()
        policy.retrying = False
        policy.before(method, path_of(url))

    def after_response(self, client, method, url, response):
        if response.status_code == 429:
            return  # retry_delay decides
        body = None
        if method == "GET" and response.status_code < 300 and response.content:
            try:
                body = response.json()
            except ValueError:
                body = None
        self.policy(client).after(method, path_of(url), response.status_code, response.headers, body)

    def retry_delay(self, client, method, attempt, waited, response):
        """Keep the pause the 429's class asks for and return the wait within the call's budget (the transport
        sleeps it), or raise MustWait; None (give up, transient) after MAX_RATE_LIMIT_WAITS tries."""
        if attempt > retry.MAX_RATE_LIMIT_WAITS:
            return None
        policy = self.policy(client)
        seconds = policy.after(method, path_of(response.url or ""), 429, response.headers, sleep=False)
        policy.retrying = True
        return seconds
