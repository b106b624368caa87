"""Jira's quota pause shared by two real worker processes on loopback (tests/e2e/quota_worker.py), through the
store the deployment names: Redis (REDIS_URL, the real Redis at 127.0.0.1:6379, db 13; skipped, saying so, when
it is unreachable) or the database (PostgreSQL). One process meets the quota 429; the other, knowing only what
the store holds, makes no Jira call and lets its event wait; after the refill both events succeed, each created
once. (Two hosts sharing the database store: the quota phase of tests/e2e/test_hosts.py.)"""

import json
import os
import select
import subprocess
import sys
import time

import pytest

from connector.models import QuotaState
from connector.sandbox.freshbooks_records import put
from connector.sandbox.jira_quota import Quota
from tests.connector.test_quota import ACCESS, CLOUD_ID, fake_jira, oauth_tenant
from tests.connector.test_quota_store import PREFIX, REDIS_URL, forget, redis_or_skip
from tests.e2e.conftest import database_url
from tests.e2e.processes import ROOT
from tests.processing import make_event

PAUSE_SECONDS = 12  # more than a call sleeps out (connector.jira.quota.QUOTA_IN_CALL, 5 s): the events wait
READ_SECONDS = 60

pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")


class Worker:
    """One quota_worker process; `process(event)` hands it an event id and returns its answer."""

    def __init__(self, name, env, log_dir):
        self.name, self.log_path = name, log_dir / f"{name}.log"
        self.log = self.log_path.open("w")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.quota_worker"], cwd=ROOT, env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.log, text=True,
        )  # fmt: skip

    def read(self):
        ready, _, _ = select.select([self.popen.stdout], [], [], READ_SECONDS)
        line = self.popen.stdout.readline() if ready else ""
        assert line, f"{self.name} answered nothing:\n{self.log_path.read_text()[-3000:]}"
        return json.loads(line)

    def process(self, event):
        self.popen.stdin.write(f"{event.pk}\n")
        self.popen.stdin.flush()
        answer = self.read()
        assert answer["event"] == event.pk
        return answer["status"]

    def stop(self):
        self.popen.stdin.close()
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)
        self.log.close()


@pytest.fixture(params=["redis", "database"])
def store_env(request):
    """The workers' REDIS_URL ("" for the database store), and the Redis client (None)."""
    if request.param == "database":
        yield "", None
        return
    client = redis_or_skip()
    yield REDIS_URL, client
    forget(client)


def test_a_quota_pause_one_process_meets_is_honoured_by_the_other(fb, store_env, tmp_path):
    redis_url, redis_client = store_env
    pool = Quota(points=10**6)
    jira = fake_jira(pool, cloud_id=CLOUD_ID, bearer_tokens={ACCESS})
    env = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": database_url(),
        "FRESHBOOKS_API_URL": fb.url, "FRESHBOOKS_AUTH_URL": fb.url,
        "ATLASSIAN_API_URL": jira.url, "ATLASSIAN_AUTH_URL": jira.url,  # nothing leaves loopback
        "CONN_MAX_AGE": "0", "LOG_LEVEL": "INFO", "REDIS_URL": redis_url,
    }  # fmt: skip
    workers = [Worker("worker-1", env, tmp_path), Worker("worker-2", env, tmp_path)]
    try:
        stores = {worker.read()["store"] for worker in workers}
        assert stores == {"RedisStore" if redis_url else "DatabaseStore"}
        for n in (1, 2):
            put(fb, "invoice", {**fb.samples["invoice"], "id": n, "invoiceid": n})
        acme, beta = oauth_tenant("acme-oauth", "7001"), oauth_tenant("beta-oauth", "7002")
        first, second = make_event(acme, "invoice.create", 1), make_event(beta, "invoice.create", 2)

        pool.exhaust(PAUSE_SECONDS)
        assert workers[0].process(first) == "waiting"
        refused = [entry for entry in pool.log if entry[3] == 429]
        assert len(refused) == 1 and refused[0][4] == "jira-quota-global-based"
        calls = len(pool.log)
        assert (
            workers[1].process(second) == "waiting"
        )  # another process, another tenant: only the store told it
        assert len(pool.log) == calls, pool.log[calls:]

        first.refresh_from_db()
        second.refresh_from_db()
        assert first.wait_reason == second.wait_reason == "Jira's quota"
        assert first.wait_until == second.wait_until and first.wait_until.timestamp() >= pool.refill_at
        kept_in_database = QuotaState.objects.filter(scope="pool:oauth", until__isnull=False).exists()
        if redis_url:
            assert redis_client.exists(PREFIX + "pool:oauth:pause") and not kept_in_database
        else:
            assert kept_in_database

        time.sleep(max(0.0, min(first.wait_until.timestamp() - time.time(), PAUSE_SECONDS) + 0.2))
        from connector import waiting

        assert sorted(waiting.release_due()) == [first.pk, second.pk]  # the scheduler's sweep
        assert workers[1].process(first) == "succeeded"
        assert workers[0].process(second) == "succeeded"
    finally:
        for worker in workers:
            worker.stop()
        jira.close()
    created = [issue["key"] for issue in jira.state["issues"].values()]
    assert len(created) == 2, created
    assert [entry[3] for entry in pool.log].count(429) == 1
