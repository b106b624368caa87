"""Jira quota benchmark (`make bench-quota`, part of `make bench`): the Procfile's worker (2 processes, ORM
broker) against the loopback fakes, the fake Jira metering OAuth calls in points (connector/sandbox/jira_quota.py)
with a short "hour" so that a reset comes within the run. This process plays the scheduler (the one-minute
sweeps `resume_waiting` and `feed`, every half second).

Runs, each on a fresh database:
1. steady: live invoice deliveries of one OAuth tenant, plenty of points → Jira points per created issue;
2. exhaust: live deliveries with a pool too small for them: the pool runs out, events wait and resume after the
   reset → events failed (should be none);
3. backfill: N invoices found by a backfill go through the bulk lane → Jira write requests per 1,000;
4. fairness: tenant B's delivery-to-issue p99 with tenant A idle, then while A backfills → their ratio.

Prints, each alone on its line: `quota failures: N`, `points per issue: X`, `backfill requests per 1000: N`,
`fairness p99 ratio: R`, and appends them to tests/bench/RESULTS.md.
"""

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from tests.bench import common
from tests.e2e.processes import Process

DB = "mlc_bench_quota"
CLOUD_ID, TOKEN = "bench-cloud", "bench-oauth-token"
TIMEOUT_SECONDS = 900
FINAL = ("succeeded", "failed", "skipped", "duplicate")


def make_fakes(points, window):
    from connector.sandbox.jira_quota import Quota, install_quota
    from tests.bench.fakes import fast_freshbooks, fast_jira

    jira = fast_jira(validate=False)
    jira.cloud_id = CLOUD_ID
    jira.credentials["bearer"].add(TOKEN)
    install_quota(jira, Quota(points=points, window=window))
    return fast_freshbooks(), jira


def oauth_tenant(slug, business_id, fb_url):
    from django.utils import timezone

    from connector.defaults import create_default_mappings
    from connector.sandbox.freshbooks import ACCESS_TOKEN, ACCOUNT_ID
    from tenants.models import ConnectionStatus, FreshBooksAccount, JiraSite, Tenant
    from tenants.oauth import AtlassianProvider, FreshBooksProvider

    tenant = Tenant.objects.create(name=slug.title(), slug=slug)
    FreshBooksAccount.objects.create(
        tenant=tenant, account_id=ACCOUNT_ID, business_id=business_id, business_name=slug,
        access_token=ACCESS_TOKEN, refresh_token="fb-refresh", status=ConnectionStatus.CONNECTED,
        token_expires_at=timezone.now() + timedelta(hours=6), token_url=fb_url + FreshBooksProvider().token[1],
    )  # fmt: skip
    JiraSite.objects.create(
        tenant=tenant, base_url=f"https://{slug}.atlassian.net", cloud_id=CLOUD_ID,
        auth_method=JiraSite.AuthMethod.OAUTH2, access_token=TOKEN, refresh_token="atl-refresh",
        token_expires_at=timezone.now() + timedelta(hours=6), status=ConnectionStatus.CONNECTED,
        token_url=AtlassianProvider().token_url,  # tokens of this deployment's vendors (tenants.safety)
    )  # fmt: skip
    create_default_mappings(tenant, "FIN")
    return tenant


def new_events(tenant, ids, bulk_lane=False):
    """Stored invoice.create events: queued with their tasks (live deliveries), or held in the bulk lane."""
    from django_q.tasks import async_task

    from audit.models import Event
    from connector import bulk, waiting

    account = tenant.freshbooks_accounts.get()
    events = Event.objects.bulk_create(
        [
            Event(tenant=tenant, source="reconcile" if bulk_lane else "freshbooks", name="invoice.create",
                  object_id=str(n), account_id=account.account_id, business_id=account.business_id,
                  status="waiting" if bulk_lane else "queued", wait_reason=waiting.BULK if bulk_lane else "",
                  payload={"name": "invoice.create", "object_id": str(n)})
            for n in ids
        ],
        batch_size=1000,
    )  # fmt: skip
    if bulk_lane:
        bulk.feed()
    else:
        for event in events:
            async_task("connector.tasks.process_event", event.pk)
    return events


def live_at_rate(tenant, ids, rate):
    """Live deliveries, `rate` a second."""
    for n in ids:
        started = time.monotonic()
        new_events(tenant, [n])
        time.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))


def settle(worker, tenants, timeout=TIMEOUT_SECONDS):
    """Play the scheduler until every event of `tenants` is final."""
    from audit.models import Event
    from connector import bulk
    from connector.tasks import resume_waiting

    deadline = time.monotonic() + timeout
    while Event.objects.filter(tenant__in=tenants).exclude(status__in=FINAL).exists():
        if time.monotonic() > deadline or not worker.alive():
            raise SystemExit(f"quota bench stuck:\n{worker.log_text()[-3000:]}")
        resume_waiting()
        bulk.feed()
        time.sleep(0.5)


def statuses(tenants):
    from django.db.models import Count

    from audit.models import Event

    return dict(Event.objects.filter(tenant__in=tenants).values_list("status").annotate(n=Count("id")))


class Run:
    """One run: fresh database, fakes, seeded tenants and the worker; `with Run(...) as run:`."""

    def __init__(self, url, log_dir, name, points=10**9, window=3600, tenants=("acme",)):
        self.url, self.log_dir, self.name = url, log_dir, name
        self.points, self.window, self.slugs = points, window, tenants

    def __enter__(self):
        from django.db import connection

        self.fb, self.jira = make_fakes(self.points, self.window)
        env = common.prepare(self.url, Q_WORKERS=2, FRESHBOOKS_API_URL=self.fb.url, CONN_MAX_AGE=60,
                             ATLASSIAN_API_URL=self.jira.url, ALLOW_LOCAL_VENDOR_URLS=1)  # fmt: skip
        self.tenants = [oauth_tenant(slug, str(7000 + i), self.fb.url) for i, slug in enumerate(self.slugs)]
        connection.close()
        self.worker = Process("worker", env, Path(self.log_dir) / f"worker-{self.name}.log").start()
        return self

    def __exit__(self, *exc):
        from django.db import connection

        self.worker.stop()
        self.fb.close()
        self.jira.close()
        connection.close()

    @property
    def quota(self):
        return self.jira.quota

    def points_spent(self):
        with self.quota.lock:
            return sum(v for k, v in self.quota.spent.items() if isinstance(k, int))

    def writes(self):
        with self.quota.lock:
            return [e for e in self.quota.log if e[1] in ("POST", "PUT", "DELETE") and e[3] != 429]


def steady(url, log_dir, count):
    with Run(url, log_dir, "steady") as run:
        new_events(run.tenants[0], range(1, count + 1))
        settle(run.worker, run.tenants)
        issues = len(run.jira.state["issues"])
        return {"points": run.points_spent(), "issues": issues, "statuses": statuses(run.tenants)}


def exhaust(url, log_dir, count, window):
    points = max(5, count // 3)
    with Run(url, log_dir, "exhaust", points=points, window=window) as run:
        new_events(run.tenants[0], range(1, count + 1))
        settle(run.worker, run.tenants)
        refused = [e for e in run.quota.log if e[3] == 429]
        from audit.models import Event

        waited = Event.objects.filter(attempts__gt=1).count()
        failed = list(Event.objects.filter(status="failed").values_list("status_detail", flat=True)[:3])
        return {"statuses": statuses(run.tenants), "refused": len(refused), "waited": waited, "points": points,
                "failed": failed}  # fmt: skip


def backfill(url, log_dir, count):
    with Run(url, log_dir, "backfill") as run:
        new_events(run.tenants[0], range(1, count + 1), bulk_lane=True)
        settle(run.worker, run.tenants)
        return {"writes": len(run.writes()), "statuses": statuses(run.tenants),
                "issues": len(run.jira.state["issues"])}  # fmt: skip


def b_latencies(run, tenant, first_id):
    """Seconds from each of tenant B's events being stored to its issue existing in Jira."""
    from audit.models import Event
    from tests.bench.fakes import created_at

    made = created_at(run.jira)
    found = []
    for object_id, received in Event.objects.filter(tenant=tenant).values_list("object_id", "received_at"):
        if object_id in made and int(object_id) >= first_id:
            found.append(made[object_id] - received.timestamp())
    return found


def fairness(url, log_dir, live, rate, backlog):
    with Run(url, log_dir, "fairness", tenants=("big", "small")) as run:
        big, small = run.tenants
        new_events(small, [0])  # warm-up: the cluster is up and connected before anything is measured
        settle(run.worker, run.tenants)
        live_at_rate(small, range(1, live + 1), rate)
        settle(run.worker, run.tenants)
        idle = b_latencies(run, small, 1)
        new_events(big, range(1_000_000, 1_000_000 + backlog), bulk_lane=True)
        time.sleep(1.0)  # the backfill is under way
        live_at_rate(small, range(10_001, 10_001 + live), rate)
        busy = b_latencies(run, small, 10_001)
        settle(run.worker, run.tenants)
        busy = b_latencies(run, small, 10_001)
        return {"idle": common.percentile(idle, 99), "busy": common.percentile(busy, 99),
                "statuses": statuses(run.tenants)}  # fmt: skip


RUNS = ("steady", "exhaust", "backfill", "fairness")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events", type=int, default=300, help="live deliveries in the steady and exhaust runs"
    )
    parser.add_argument("--window", type=int, default=20, help="seconds of the fake Jira's quota 'hour'")
    parser.add_argument("--backfill", type=int, default=1000, help="invoices in the backfill run")
    parser.add_argument(
        "--live", type=int, default=100, help="tenant B's live deliveries in the fairness run"
    )
    parser.add_argument("--rate", type=float, default=10.0, help="tenant B's deliveries a second")
    parser.add_argument("--backlog", type=int, default=5000, help="tenant A's backfill in the fairness run")
    parser.add_argument("--database", default=DB)
    args = parser.parse_args(argv)
    url = common.database_url(args.database)
    log_dir = tempfile.mkdtemp(prefix="bench-quota-")
    common.setup_django(url)

    s = steady(url, log_dir, args.events)
    e = exhaust(url, log_dir, args.events, args.window)
    b = backfill(url, log_dir, args.backfill)
    f = fairness(url, log_dir, args.live, args.rate, args.backlog)
    per_issue = s["points"] / max(1, s["issues"])
    failures = e["statuses"].get("failed", 0)
    per_1000 = b["writes"] * 1000 / max(1, args.backfill)
    ratio = f["busy"] / max(f["idle"], 1e-6)
    lines = [
        f"steady: {args.events} live deliveries, {s['issues']} issues, {s['points']} points; statuses {s['statuses']}",
        f"exhaust: {args.events} live deliveries, pool {e['points']} points per {args.window} s: {e['refused']} "
        f"quota 429s, {e['waited']} events waited and resumed; statuses {e['statuses']}"
        + (f"; failures: {e['failed']}" if e["failed"] else ""),
        f"backfill: {args.backfill} invoices, {b['writes']} Jira write requests, {b['issues']} issues; "
        f"statuses {b['statuses']}",
        f"fairness: tenant B {args.live} deliveries at {args.rate:g}/s: p99 {f['idle'] * 1000:.0f} ms with A idle, "
        f"{f['busy'] * 1000:.0f} ms while A backfills {args.backlog}; statuses {f['statuses']}",
        f"quota failures: {failures}",
        f"points per issue: {per_issue:.2f}",
        f"backfill requests per 1000: {per_1000:.0f}",
        f"fairness p99 ratio: {ratio:.2f}",
    ]
    common.record("Jira quota (make bench-quota)", lines)
    if failures:
        raise SystemExit(f"quota: {failures} event(s) failed")


if __name__ == "__main__":
    main()
