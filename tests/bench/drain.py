"""Backlog drain benchmark (`make bench-drain`, part of `make bench`): N queued invoice events, the Procfile's
worker with 1 and 2 processes on the ORM broker (make run's default), loopback fakes without spec validation.

Prints events/s per run, per-event CPU split between the worker, PostgreSQL and the fakes (this process),
the time per event with 1,000 and 10,000 queued (2 processes), the peak RSS of the worker's processes, and
`drain: N events/s` for two worker processes. Appends the figures to tests/bench/RESULTS.md.
"""

import argparse
import tempfile
import time
from pathlib import Path

from tests.bench import common
from tests.e2e.processes import Process, peak_rss_mb

DB = "mlc_bench_drain"
TIMEOUT_SECONDS = 600


def queue_events(count, first_id=1_000_000):
    """`count` stored, queued invoice.create events with their process_event tasks in the broker."""
    from django.db import transaction
    from django_q.tasks import async_task

    from audit.models import Event
    from tenants.models import Tenant

    tenant = Tenant.objects.get(slug=common.TENANT_SLUG)
    events = [
        Event(
            tenant=tenant,
            source=Event.Source.FRESHBOOKS,
            name="invoice.create",
            object_id=str(first_id + i),
            account_id=fields["account_id"],
            business_id=fields["business_id"],
            payload=fields,
            status=Event.Status.QUEUED,
        )  # fmt: skip
        for i in range(count)
        for fields in [common.delivery_fields(first_id + i)]
    ]
    with transaction.atomic():
        created = Event.objects.bulk_create(events, batch_size=1000)
        for event in created:
            async_task("connector.tasks.process_event", event.pk)
    return [e.pk for e in created]


def run(url, count, workers, log_dir):
    """Drain `count` queued events with `workers` worker processes; returns the figures as a dict."""
    from django.db import connection
    from django.db.models import Count, Max, Min

    from audit.models import Event
    from tests.bench.fakes import fast_freshbooks, fast_jira, issues_by_object  # needs Django set up

    fb, jira = fast_freshbooks(), fast_jira(validate=False)
    try:
        env = common.prepare(url, Q_WORKERS=workers, FRESHBOOKS_API_URL=fb.url, CONN_MAX_AGE=60)
        common.seed(jira.url)
        queue_events(count)
        connection.close()
        worker = Process("worker", env, Path(log_dir) / f"worker-{workers}-{count}.log")
        meter_worker, meter_db = common.CpuMeter(), common.CpuMeter()
        fakes_before = time.process_time()
        worker.start()
        started = time.monotonic()
        rss = {}
        left = count
        while left:
            if time.monotonic() - started > TIMEOUT_SECONDS or not worker.alive():
                raise SystemExit(f"drain stuck with {left} left:\n{worker.log_text()}")
            time.sleep(0.25)
            pids = worker.pids()
            meter_worker.sample(pids)
            meter_db.sample(common.backend_pids(url))
            rss.update({p: max(m, rss.get(p, 0)) for p, m in peak_rss_mb(pids).items()})
            left = Event.objects.filter(status__in=[Event.Status.QUEUED, Event.Status.PROCESSING]).count()
        first, last = Event.objects.aggregate(Min("started_at"), Max("finished_at")).values()
        wall = (last - first).total_seconds()  # first claim to last finish: the cluster's start-up left out
        fakes_cpu = time.process_time() - fakes_before
        worker.stop()
        statuses = dict(Event.objects.values_list("status").annotate(n=Count("id")))
        issues = issues_by_object(jira)
        return {
            "count": count, "workers": workers, "wall": wall, "rate": count / wall, "statuses": statuses,
            "issues": len(issues), "duplicates": sum(n - 1 for n in issues.values()),
            "cpu_worker": meter_worker.total() / count * 1000, "cpu_db": meter_db.total() / count * 1000,
            "cpu_fakes": fakes_cpu / count * 1000, "rss": max(rss.values(), default=0),
            "rss_all": sorted(round(v) for v in rss.values()),
        }  # fmt: skip
    finally:
        fb.close()
        jira.close()
        connection.close()


def line(r):
    return (
        f"{r['count']:>6} events, {r['workers']} worker process(es): {r['rate']:6.1f} events/s "
        f"({r['wall'] / r['count'] * 1000:.1f} ms/event); CPU per event: worker {r['cpu_worker']:.1f} ms, "
        f"PostgreSQL {r['cpu_db']:.1f} ms, fakes {r['cpu_fakes']:.1f} ms; peak RSS per process (MB) "
        f"{r['rss_all']}; statuses {r['statuses']}; issues {r['issues']}, duplicates {r['duplicates']}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000, help="backlog for the 1 and 2 process runs")
    parser.add_argument("--small", type=int, default=1000, help="small backlog (time per event), 2 processes")
    parser.add_argument(
        "--large", type=int, default=10000, help="large backlog (time per event), 2 processes"
    )
    parser.add_argument("--database", default=DB)
    args = parser.parse_args(argv)
    url = common.database_url(args.database)
    log_dir = tempfile.mkdtemp(prefix="bench-drain-")
    common.setup_django(url)

    runs = {}
    for key, count, workers in (("one", args.events, 1), ("two", args.events, 2), ("small", args.small, 2),
                                ("large", args.large, 2)):  # fmt: skip
        runs[key] = run(url, count, workers, log_dir)
        print(line(runs[key]), flush=True)
    small, large = runs["small"], runs["large"]
    growth = (large["wall"] / large["count"]) / (small["wall"] / small["count"]) - 1
    cpu = [r["cpu_worker"] + r["cpu_db"] for r in (small, large)]  # less noisy than wall time on a shared box
    worker_rss = max(r["rss"] for r in runs.values())
    two = runs["two"]
    lines = [line(r) for r in runs.values()] + [
        f"time per event {small['count']} → {large['count']} queued: {growth * 100:+.0f}% "
        f"(target within ±20%: {'met' if abs(growth) <= 0.2 else 'NOT met'}); CPU per event (cluster + "
        f"PostgreSQL) {cpu[0]:.1f} → {cpu[1]:.1f} ms: {(cpu[1] / cpu[0] - 1) * 100:+.0f}%",
        f"peak RSS of a worker process: {worker_rss:.0f} MB (target < 100 MB: {'met' if worker_rss < 100 else 'NOT met'})",
        f"two worker processes: target >= 100 events/s {'met' if two['rate'] >= 100 else 'NOT met'}",
        f"drain: {two['rate']:.0f} events/s",
    ]
    common.record("Drain (make bench-drain)", lines[len(runs) :])
    lost = sum(r["count"] - r["statuses"].get("succeeded", 0) for r in runs.values())
    if lost or any(r["duplicates"] for r in runs.values()):
        raise SystemExit(f"drain: {lost} event(s) not succeeded or duplicate issues")


if __name__ == "__main__":
    main()
