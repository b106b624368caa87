"""End-to-end latency benchmark (`make bench-e2e`, part of `make bench`): signed deliveries at a steady rate to
the Procfile's web (gunicorn) with the Procfile's worker draining them against zero-latency loopback fakes;
the latency from each delivery's 200 to its Jira issue existing in the fake, p50/p99.

Runs with `make run`'s broker settings (the ORM broker, its default poll) and with the Redis broker
(REDIS_URL, default redis://127.0.0.1:6379/14). Prints `e2e p99: N ms` (ORM broker, the default) and appends
the figures, with the peak RSS of the web and worker processes, to tests/bench/RESULTS.md.
"""

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from tests.bench import common
from tests.e2e.processes import free_port, peak_rss_mb, start_web, start_worker

DB = "mlc_bench_e2e"


async def steady(port, object_ids, rate):
    """Send one delivery per object id at `rate` per second (each on a new connection, not waiting for the
    previous); returns {object id: (status, time.time() of the answer)}."""
    answered = {}
    began = time.monotonic()

    async def one(index, object_id):
        await asyncio.sleep(max(0.0, began + index / rate - time.monotonic()))
        body, sig = common.signed(object_id)
        status = await common.send(port, common.raw_request("/webhooks/freshbooks/", port, body, sig))
        answered[str(object_id)] = (status, time.time())

    await asyncio.gather(*(one(i, n) for i, n in enumerate(object_ids)))
    return answered


def run(url, broker, redis_url, rate, seconds, log_dir, first_id):
    """One steady run; returns the figures."""
    from django.db import connection

    from tests.bench.fakes import created_at, fast_freshbooks, fast_jira  # needs Django set up

    fb, jira = fast_freshbooks(), fast_jira(validate=False)
    web = worker = None
    try:
        env = common.prepare(url, redis_url, FRESHBOOKS_API_URL=fb.url)
        for name in ("Q_POLL", "Q_WORKERS", "WEB_CONCURRENCY"):
            env.pop(name, None)  # make run's defaults
        common.seed(jira.url)
        connection.close()
        port = free_port()
        web = start_web(env, Path(log_dir) / f"web-{broker}.log", port, workers=2)
        worker = start_worker({**env, "Q_WORKERS": "2"}, Path(log_dir) / f"worker-{broker}.log", workers=2)
        warm = list(range(first_id - 50, first_id))
        asyncio.run(steady(port, warm, rate))  # warm both up, not counted
        ids = list(range(first_id, first_id + int(rate * seconds)))
        answered = asyncio.run(steady(port, ids, rate))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(set(created_at(jira)) & set(answered)) < len(ids):
            time.sleep(0.2)
        created = created_at(jira)
        latencies = [
            (created[k] - t) * 1000 for k, (status, t) in answered.items() if status == 200 and k in created
        ]
        statuses = {}
        for status, _ in answered.values():
            statuses[status] = statuses.get(status, 0) + 1
        rss_web = max(peak_rss_mb(web.pids()).values(), default=0)
        rss_worker = max(peak_rss_mb(worker.pids()).values(), default=0)
        return {
            "broker": broker, "sent": len(ids), "statuses": statuses, "issued": len(latencies),
            "p50": common.percentile(latencies, 50), "p99": common.percentile(latencies, 99),
            "max": max(latencies, default=float("nan")), "rss_web": rss_web, "rss_worker": rss_worker,
        }  # fmt: skip
    finally:
        for process in (worker, web):
            if process is not None:
                process.stop()
        fb.close()
        jira.close()
        connection.close()


def line(r, rate):
    met = r["p50"] < 100 and r["p99"] < 300 and r["issued"] == r["sent"]
    return (
        f"{r['broker']:<5} broker, {rate:g} deliveries/s: {r['sent']} sent {r['statuses']}, {r['issued']} issues; "
        f"200 → issue p50 {r['p50']:.0f} ms, p99 {r['p99']:.0f} ms, max {r['max']:.0f} ms "
        f"(target p50 < 100, p99 < 300: {'met' if met else 'NOT met'}); peak RSS web {r['rss_web']:.0f} MB, "
        f"worker {r['rss_worker']:.0f} MB per process"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="deliveries per second (default 20)")
    parser.add_argument("--seconds", type=float, default=60.0, help="duration of each run (default 60)")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", common.DEFAULT_REDIS),
                        help="Redis for the second run; empty: ORM broker only")  # fmt: skip
    parser.add_argument("--database", default=DB)
    args = parser.parse_args(argv)
    url = common.database_url(args.database)
    common.setup_django(url)
    log_dir = tempfile.mkdtemp(prefix="bench-e2e-")
    runs = [run(url, "ORM", "", args.rate, args.seconds, log_dir, 2_000_000)]
    print(line(runs[0], args.rate), flush=True)
    if args.redis_url:
        runs.append(run(url, "Redis", args.redis_url, args.rate, args.seconds, log_dir, 3_000_000))
        print(line(runs[1], args.rate), flush=True)
    lines = [line(r, args.rate) for r in runs] + [f"logs: {log_dir}", f"e2e p99: {runs[0]['p99']:.0f} ms"]
    common.record("End to end (make bench-e2e)", lines)
    if any(r["issued"] != r["sent"] for r in runs):
        raise SystemExit("e2e: some deliveries did not become issues")


if __name__ == "__main__":
    main()
