"""Ingest benchmark (`make bench-ingest`, part of `make bench`): signed FreshBooks deliveries to the webhook vs
a trivial view and a floor view (parse the form, check the HMAC, one INSERT with autocommit; tests/bench/urls.py),
all served by the same gunicorn (the Procfile's `web`) in the same interleaved rounds.

For the ORM broker (make run's default) and the Redis broker: requests per second, p50/p99 latency at C
concurrent senders (a new connection per request, as a webhook sender does), gunicorn and PostgreSQL CPU per
delivery, and the ratios webhook/floor and webhook/trivial. Prints `ratio webhook/floor: R` (ORM broker) and
appends the figures to tests/bench/RESULTS.md. No worker runs: the events stay queued.
"""

import argparse
import asyncio
import os
import tempfile

from tests.bench import common
from tests.bench.build import Build
from tests.e2e.processes import free_port, start_web

DB = "mlc_bench_ingest"
TARGETS = (("trivial", "/bench/trivial/"), ("floor", "/bench/floor/"), ("webhook", "/webhooks/freshbooks/"))


def run(url, broker, redis_url, args, log_dir, before=None):
    """{target: figures} and the events stored; with `before` (a tests.bench.build.Build) its webhook, on a
    database of its own, is one more target ("webhook@<ref>") of the same rounds."""
    from django.db import connection

    from audit.models import Event
    from tests.bench.urls import FLOOR_TABLE

    env = common.prepare(url, redis_url)
    common.seed("http://127.0.0.1:9/")  # no worker runs: Jira is never called
    with connection.cursor() as cursor:
        cursor.execute(FLOOR_TABLE)
    connection.close()
    port = free_port()
    webs = [start_web(env, f"{log_dir}/web-{broker}.log", port, workers=args.workers)]
    # (name, port, path, web, database url)
    targets = [(key, port, path, webs[0], url) for key, path in TARGETS]
    try:
        if before is not None:
            before_url = f"{url}_before"
            before_port = free_port()
            before_env = before.prepare(before_url, redis_url)
            webs.append(
                before.start_web(before_env, f"{log_dir}/web-{broker}-before.log", before_port, args.workers)
            )
            targets.append(
                (f"webhook@{before.ref}", before_port, "/webhooks/freshbooks/", webs[1], before_url)
            )
        warmup, per_round = 200, max(1, args.requests // args.rounds)
        signed = [common.signed(n) for n in range(1, warmup + per_round * args.rounds + 1)]
        results = {key: {"lat": [], "codes": {}, "wall": 0.0, "app": 0.0, "db": 0.0} for key, *_ in targets}
        for _, target_port, path, *_ in targets:
            payloads = [common.raw_request(path, target_port, b, s) for b, s in signed[:warmup]]
            asyncio.run(common.load(target_port, payloads, args.concurrency, 30))
        for r in range(args.rounds):
            # Short alternating phases: every target sees the same background load on a shared machine.
            chunk = signed[warmup + r * per_round : warmup + (r + 1) * per_round]
            for key, target_port, path, web, db_url in targets:
                payloads = [common.raw_request(path, target_port, b, s) for b, s in chunk]
                app, db = common.CpuMeter(), common.CpuMeter()
                app.sample(web.pids())
                db.sample(common.backend_pids(db_url))
                done, wall = asyncio.run(
                    common.load(target_port, payloads, args.concurrency, args.max_seconds)
                )
                app.sample(web.pids())
                db.sample(common.backend_pids(db_url))
                found = results[key]
                found["lat"] += [d[0] for d in done]
                for _, status, *_ in done:
                    found["codes"][status] = found["codes"].get(status, 0) + 1
                found["wall"] += wall
                found["app"] += app.total()
                found["db"] += db.total()
    finally:
        for web in webs:
            web.stop()
    if redis_url:
        common.purge_redis(redis_url)  # no worker ran: drop the tasks
    stored = Event.objects.filter(status=Event.Status.QUEUED).count()
    connection.close()
    return results, stored


def figures(broker, results, stored, concurrency, workers):
    rate = {k: len(r["lat"]) / r["wall"] for k, r in results.items()}
    lines = [
        f"{broker} broker: gunicorn {workers} sync workers, {concurrency} concurrent senders, {os.cpu_count()} CPUs"
    ]
    for key, r in results.items():
        n = len(r["lat"])
        codes = ", ".join(f"{c}×{m}" for c, m in sorted(r["codes"].items()))
        lines.append(
            f"  {key:<8} {n:>6} req {rate[key]:>7.0f} req/s  p50 {common.percentile(r['lat'], 50) * 1000:6.1f} ms  "
            f"p99 {common.percentile(r['lat'], 99) * 1000:6.1f} ms  CPU/req: gunicorn {r['app'] / n * 1000:.2f} ms, "
            f"PostgreSQL {r['db'] / n * 1000:.2f} ms  [{codes}]"
        )
    floor_ratio, trivial_ratio = rate["webhook"] / rate["floor"], rate["webhook"] / rate["trivial"]
    p99 = common.percentile(results["webhook"]["lat"], 99) * 1000
    lines.append(
        f"  {broker}: webhook/floor {floor_ratio:.2f} (target >= 0.75: {'met' if floor_ratio >= 0.75 else 'NOT met'}), "
        f"webhook/trivial {trivial_ratio:.2f}, floor/trivial {rate['floor'] / rate['trivial']:.2f}; webhook p99 "
        f"{p99:.0f} ms (target < 100 ms: {'met' if p99 < 100 else 'NOT met'}); events stored: {stored}"
    )
    for key in rate:
        if key.startswith("webhook@"):
            ratio = rate["webhook"] / rate[key]
            lines.append(
                f"  {broker}: webhook/{key} {ratio:.2f} (req/s; within 10%: {'met' if ratio >= 0.9 else 'NOT met'})"
            )
    return lines, floor_ratio, trivial_ratio


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", type=int, default=3000, help="requests per target and broker (default 3000)"
    )
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--max-seconds", type=float, default=60, help="time limit per phase")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", common.DEFAULT_REDIS),
                        help="Redis for the second run; empty: ORM broker only")  # fmt: skip
    parser.add_argument("--database", default=DB)
    parser.add_argument(
        "--compare",
        metavar="REF",
        help="also serve the webhook of this git ref (its own build and database) in the same rounds: webhook@REF",
    )
    args = parser.parse_args(argv)
    url = common.database_url(args.database)
    common.setup_django(url)
    log_dir = tempfile.mkdtemp(prefix="bench-ingest-")
    lines, headline = [], None
    before = Build(args.compare) if args.compare else None
    try:
        for broker, redis_url in (("ORM", ""), ("Redis", args.redis_url)):
            if broker == "Redis" and not redis_url:
                continue
            results, stored = run(url, broker, redis_url, args, log_dir, before)
            found, floor_ratio, trivial_ratio = figures(
                broker, results, stored, args.concurrency, args.workers
            )
            print("\n".join(found), flush=True)
            lines += found
            if headline is None:
                headline = (floor_ratio, trivial_ratio)
    finally:
        if before is not None:
            before.close()
    lines += [f"ratio webhook/floor: {headline[0]:.2f}", f"ratio webhook/trivial: {headline[1]:.2f}"]
    common.record("Ingest (make bench-ingest)", lines)


if __name__ == "__main__":
    main()
