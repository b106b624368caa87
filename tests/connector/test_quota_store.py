"""The shared rate-limit store (connector/jira/quota_store.py), the database and Redis alike: each behaviour is
run on both. The Redis store runs against the real Redis at 127.0.0.1:6379, database 13 (its `mlc:quota:` keys
are deleted before and after each test); without a reachable Redis those tests are skipped, saying so.

Then the policy on the Redis store (REDIS_URL set): a quota 429 seen by one worker pauses the others through
Redis alone (nothing in connector.QuotaState), and writes to one issue are paced through it. Two real processes
sharing the pause: tests/e2e/test_quota_processes.py."""

import time

import pytest

from audit.models import Event
from connector import waiting
from connector.jira import quota_store
from connector.models import QuotaState
from connector.sandbox.freshbooks_records import put
from connector.sandbox.jira_quota import Quota
from connector.tasks import process_event
from tests.connector.test_quota import (
    ACCESS,
    CLOUD_ID,
    Clock,
    fake_jira,
    moment,
    oauth_tenant,
    paced_worklogs,
    quota_429s,
)
from tests.processing import make_event

REDIS_URL = "redis://127.0.0.1:6379/13"
PREFIX = "mlc:quota:"
PER_ISSUE = ((2.0, 18), (30.0, 95))

pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")


def redis_or_skip():
    """A client of database 13 of the local Redis, its quota keys deleted; skips the test when unreachable."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        pytest.skip(
            f"the Redis quota store is tested against Redis at 127.0.0.1:6379 (db 13): unreachable ({exc})"
        )
    forget(client)
    return client


def forget(client):
    keys = list(client.scan_iter(match=PREFIX + "*", count=500))
    if keys:
        client.delete(*keys)


@pytest.fixture(params=["database", "redis"])
def store(request, settings):
    """Each store as the deployment would use it: the database (no REDIS_URL), or Redis (REDIS_URL set)."""
    if request.param == "database":
        request.getfixturevalue("db")
        settings.REDIS_URL = ""
        yield quota_store.store()
        return
    client = redis_or_skip()
    settings.REDIS_URL = REDIS_URL
    try:
        yield quota_store.store()
    finally:
        forget(client)


@pytest.fixture
def redis_store(settings):
    """REDIS_URL set for the test (the policy keeps its state in Redis db 13), and the Redis client."""
    client = redis_or_skip()
    settings.REDIS_URL = REDIS_URL
    yield client
    forget(client)


def test_the_deployment_gets_the_store_its_settings_name(store, settings):
    expected = quota_store.RedisStore if settings.REDIS_URL else quota_store.DatabaseStore
    assert isinstance(store, expected)


def test_a_pause_holds_under_its_scope_until_it_ends(store):
    now = time.time()
    store.pause("pool:oauth", now + 30, "jira-quota-global-based")
    until, reason = store.paused(["pool:oauth", "site:1"], now)
    assert abs(until - (now + 30)) < 1e-3 and reason == "jira-quota-global-based"
    assert store.paused(["site:1"], now) is None  # another scope
    assert store.paused(["pool:oauth"], now + 31) is None  # over
    assert store.paused([], now) is None
    assert set(store.pauses(["pool:oauth", "site:1", "site:2"], now)) == {"pool:oauth"}  # each by its scope


def test_the_latest_pause_wins_and_a_shorter_one_does_not_shorten_it(store):
    now = time.time()
    store.pause("site:1", now + 60, "jira-quota-tenant-based")
    store.pause("site:1", now + 10, "jira-burst-based")
    assert store.paused(["site:1"], now)[1] == "jira-quota-tenant-based"
    store.pause("pool:oauth", now + 90, "jira-quota-global-based")
    assert store.paused(["site:1", "pool:oauth"], now)[1] == "jira-quota-global-based"
    store.pause("site:1", now + 120, "jira-cost-based")  # a longer one replaces it
    until, reason = store.paused(["site:1"], now)
    assert abs(until - (now + 120)) < 1e-3 and reason == "jira-cost-based"


def test_reserve_paces_calls_within_every_window(store):
    """Jira's per-issue limit: 18 calls at once, then the 19th waits until the first leaves the 2 s window."""
    now = time.time()
    delays = [store.reserve("issue:1:FIN-1", PER_ISSUE, now) for _ in range(19)]
    assert delays[:18] == [0.0] * 18
    assert 2.0 <= delays[18] < 2.01
    assert store.reserve("issue:1:FIN-2", PER_ISSUE, now) == 0.0  # another issue: its own slots


def test_reserve_keeps_the_interval_after_the_previous_call(store):
    now = time.time()
    delays = [store.reserve("burst:1:POST issue", (), now, interval=0.05) for _ in range(3)]
    assert [round(d, 6) for d in delays] == [0.0, 0.05, 0.1]
    assert store.reserve("burst:1:POST issue", (), now + 10, interval=0.05) == 0.0  # long after: at once


def test_jiras_remaining_figure_is_kept_and_its_limit_outlives_a_figure_without_one(store):
    """`Beta-RateLimit` may come without `Beta-RateLimit-Policy` (no limit): the limit kept before stays, or bulk
    work would no longer yield below 20% (connector.jira.quota.low_until needs the limit)."""
    assert store.remaining("pool:oauth") is None
    store.remember("pool:oauth", 12000, 65000)
    remaining, limit, when = store.remaining("pool:oauth")
    assert (remaining, limit) == (12000, 65000) and abs(when - time.time()) < 5
    store.remember("pool:oauth", 900, None)
    assert store.remaining("pool:oauth")[:2] == (900, 65000)


def test_a_redis_pause_expires_with_it(redis_store, settings):
    now = time.time()
    quota_store.store().pause("pool:oauth", now + 30, "jira-quota-global-based")
    assert 0 < redis_store.ttl(PREFIX + "pool:oauth:pause") <= 32


@pytest.fixture
def clock(monkeypatch):
    from connector.jira import quota

    found = Clock((int(time.time()) // 3600 + 1) * 3600 - 600)  # 10 minutes before the next top of the hour
    monkeypatch.setattr(quota, "clock", found)
    return found


@pytest.fixture
def invoices(fb):
    for n in range(1, 4):
        put(fb, "invoice", {**fb.samples["invoice"], "id": n, "invoiceid": n})


@pytest.mark.django_db
def test_on_redis_a_spent_pool_seen_by_one_worker_pauses_the_others_and_events_succeed_after_the_reset(
    redis_store, fb, settings, clock, invoices
):
    pool = Quota(points=1000, clock=clock)
    jira = fake_jira(pool, cloud_id=CLOUD_ID, bearer_tokens={ACCESS})
    settings.ATLASSIAN_API_URL = jira.url
    try:
        acme, beta = oauth_tenant("acme-oauth", "7001"), oauth_tenant("beta-oauth", "7002")
        process_event(make_event(acme, "invoice.create", 1).pk)
        pool.exhaust()
        first, second = make_event(acme, "invoice.create", 2), make_event(beta, "invoice.create", 3)
        process_event(first.pk)
        calls = len(pool.log)
        process_event(second.pk)  # another tenant's worker: sees the pause in Redis, calls nothing

        reset = moment((int(clock()) // 3600 + 1) * 3600)
        for event in (first, second):
            event.refresh_from_db()
            assert (event.status, event.wait_until, event.wait_reason) == ("waiting", reset, "Jira's quota")
        assert len(quota_429s(pool)) == 1 and len(pool.log) == calls
        assert redis_store.exists(PREFIX + "pool:oauth:pause")
        assert not QuotaState.objects.filter(until__isnull=False).exists()  # kept in Redis, not the database

        clock.advance(601)
        assert waiting.release_due(now=moment(clock())) == [first.pk, second.pk]
        for event in (first, second):
            process_event(event.pk)
            assert Event.objects.get(pk=event.pk).status == "succeeded"
    finally:
        jira.close()


@pytest.mark.django_db
def test_on_redis_writes_to_one_issue_are_paced_within_jiras_per_issue_limits(redis_store, tenant, clock):
    """Two clients (two workers' views) add 150 worklogs to one issue, pacing shared through Redis."""
    site, key = paced_worklogs(tenant, clock)
    assert redis_store.exists(PREFIX + f"issue:{site.pk}:{key}:slots")
    assert not QuotaState.objects.exists()
