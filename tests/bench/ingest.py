"""Ingest benchmark (`make bench-ingest`): signed FreshBooks deliveries vs a trivial Django view.

Recreates a dedicated PostgreSQL database (BENCH_DATABASE_URL, default mlc_bench on 127.0.0.1), migrates
it, seeds a tenant with a verified callback, serves the application with gunicorn on a free loopback
port, then sends the same load (N POSTs, C concurrent senders, a new connection per request as a
webhook sender does) first to a trivial view and then to /webhooks/freshbooks/, and prints requests
per second, p50/p99 latency and the ratio. Bounded: each phase stops after --max-seconds; gunicorn is
stopped at the end. Only 127.0.0.1 is contacted. Not a pytest module (no test_ prefix).
"""

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = "tests.bench.settings"
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/mlc_bench"
VERIFIER = "bench-verifier-0123456789"
ACCOUNT_ID, BUSINESS_ID = "BnchA", "90210"
HOST = "127.0.0.1"


def recreate_database(url):
    import psycopg

    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost"):
        sys.exit("The benchmark only talks to a local PostgreSQL (127.0.0.1).")
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def django_env(url, redis_url=""):
    env = dict(os.environ, DJANGO_SETTINGS_MODULE=SETTINGS, DATABASE_URL=url, PYTHONPATH=str(ROOT))
    env.pop("REDIS_URL", None)
    if redis_url:
        if urlsplit(redis_url).hostname not in ("127.0.0.1", "localhost"):
            sys.exit("The benchmark only talks to a local Redis (127.0.0.1).")
        env["REDIS_URL"] = redis_url
    return env


def seed():
    """A tenant, its FreshBooks account and a verified invoice.create callback (in this process)."""
    import django

    django.setup()
    from tenants.models import FreshBooksAccount, FreshBooksWebhook, Tenant

    tenant = Tenant.objects.create(name="Bench", slug="bench")
    account = FreshBooksAccount.objects.create(tenant=tenant, account_id=ACCOUNT_ID, business_id=BUSINESS_ID)
    FreshBooksWebhook.objects.create(
        account=account, callback_id=1, event="invoice.create", uri="https://bench.test/", verifier=VERIFIER,
        verified=True,
    )  # fmt: skip


def deliveries(count, start):
    """`count` distinct signed deliveries: (body, signature header value)."""
    from connector.freshbooks import signature

    made = []
    for i in range(start, start + count):
        fields = {
            "name": "invoice.create", "object_id": str(1_000_000 + i), "account_id": ACCOUNT_ID,
            "business_id": BUSINESS_ID, "identity_id": "1234", "user_id": "1",
        }  # fmt: skip
        made.append((urlencode(list(fields.items())).encode(), signature.compute(fields, VERIFIER)))
    return made


def raw_request(path, port, body, sig):
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUser-Agent: FreshHooks/bench\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
        f"X-FreshBooks-Hmac-SHA256: {sig}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def one(port, payload):
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(payload)
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0


async def load(port, payloads, concurrency, max_seconds):
    """Send every payload with `concurrency` senders; returns (latencies in s, statuses, wall time)."""
    queue = iter(payloads)
    latencies, statuses = [], {}
    deadline = time.monotonic() + max_seconds

    async def sender():
        for payload in queue:
            if time.monotonic() > deadline:
                return
            started = time.perf_counter()
            try:
                status = await asyncio.wait_for(one(port, payload), timeout=10)
            except (TimeoutError, OSError, ValueError, IndexError):
                status = 0
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1

    began = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return latencies, statuses, time.perf_counter() - began


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def report(label, latencies, statuses, wall, app_cpu, db_cpu):
    rate = len(latencies) / wall
    p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    codes = ", ".join(f"{k}×{v}" for k, v in sorted(statuses.items()))
    app_ms, db_ms = app_cpu / len(latencies) * 1000, db_cpu / len(latencies) * 1000
    print(
        f"{label:<22} {len(latencies):>6} req {rate:>7.0f} req/s  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  "
        f"CPU/req: gunicorn {app_ms:.2f} ms, PostgreSQL {db_ms:.2f} ms  [{codes}]"
    )
    return rate, p99 / 1000


TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pids):
    """User + system CPU seconds of `pids` (Linux /proc); vanished processes count 0."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def server_pids(master, database):
    """gunicorn's master and workers, and the PostgreSQL backends serving the bench database."""
    import psycopg

    children = Path(f"/proc/{master}/task/{master}/children")
    workers = [int(p) for p in children.read_text().split()] if children.exists() else []
    with psycopg.connect(database, autocommit=True) as conn:
        backends = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
    return [master, *workers], backends


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_ready(port, proc, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"gunicorn exited with {proc.returncode}")
        try:
            status = asyncio.run(one(port, raw_request("/bench/trivial/", port, b"", "")))
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("gunicorn did not answer in time")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="requests per target (default 5000)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--worker-class", default="sync")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (gthread)")
    parser.add_argument(
        "--rounds", type=int, default=5, help="alternating trivial/webhook phases (default 5)"
    )
    parser.add_argument("--max-seconds", type=float, default=120, help="time limit per target")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument(
        "--redis-url",
        default="",
        help="use django-q's Redis broker, e.g. redis://127.0.0.1:6379/15 (default: ORM)",
    )
    args = parser.parse_args()

    os.environ.update(django_env(args.database_url, args.redis_url))
    print(f"database {args.database_url}: recreating and migrating …", flush=True)
    recreate_database(args.database_url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=os.environ, check=True
    )
    seed()
    warmup = 300
    signed = deliveries(warmup + args.requests, 0)
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="bench-gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
    command = [
        sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"{HOST}:{port}",
        "--workers", str(args.workers), "--worker-class", args.worker_class, "--threads", str(args.threads),
        "--log-level", "warning", "--backlog", "2048",
    ]  # fmt: skip
    proc = subprocess.Popen(command, cwd=ROOT, env=os.environ, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(port, proc)
        trivial = [raw_request("/bench/trivial/", port, body, sig) for body, sig in signed]
        hooks = [raw_request("/webhooks/freshbooks/", port, body, sig) for body, sig in signed]
        asyncio.run(load(port, trivial[:warmup], args.concurrency, 30))  # warm both paths up
        asyncio.run(load(port, hooks[:warmup], args.concurrency, 30))
        print(
            f"gunicorn {args.workers} × {args.worker_class} (threads {args.threads}), "
            f"{args.concurrency} concurrent senders, {os.cpu_count()} CPUs, {args.rounds} interleaved rounds, "
            f"broker: {'Redis' if args.redis_url else 'ORM (PostgreSQL)'}",
            flush=True,
        )
        results = {"trivial": ([], {}, 0.0, 0.0, 0.0), "webhook": ([], {}, 0.0, 0.0, 0.0)}
        size = args.requests // args.rounds
        budget = args.max_seconds / args.rounds
        for r in range(args.rounds):
            # Alternate short phases so both targets see the same background load on a shared machine.
            for key, payloads in (("trivial", trivial), ("webhook", hooks)):
                chunk = payloads[warmup + r * size : warmup + (r + 1) * size]
                gunicorn_pids, backends = server_pids(proc.pid, args.database_url)
                before = cpu_seconds(gunicorn_pids), cpu_seconds(backends)
                lat, codes, wall = asyncio.run(load(port, chunk, args.concurrency, budget))
                after = cpu_seconds(gunicorn_pids), cpu_seconds(backends)
                old_lat, old_codes, old_wall, old_app, old_db = results[key]
                for code, n in codes.items():
                    old_codes[code] = old_codes.get(code, 0) + n
                results[key] = (
                    old_lat + lat, old_codes, old_wall + wall,
                    old_app + after[0] - before[0], old_db + after[1] - before[1],
                )  # fmt: skip
        base = report("trivial Django view", *results["trivial"])
        ingest = report("/webhooks/freshbooks/", *results["webhook"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    from audit.models import Event

    if args.redis_url:  # drop the tasks the benchmark queued (no worker runs here)
        from django_q.brokers import get_broker

        get_broker().purge_queue()
    stored = Event.objects.filter(status=Event.Status.QUEUED).count()
    ratio = ingest[0] / base[0]
    print(f"ratio (webhook / trivial throughput): {ratio:.2f}   events stored (queued): {stored}")
    print(
        f"targets: ratio >= 0.5 {'met' if ratio >= 0.5 else 'NOT met'}; "
        f"webhook p99 < 100 ms {'met' if ingest[1] * 1000 < 100 else 'NOT met'}"
    )
    print(f"gunicorn log: {log.name}")


if __name__ == "__main__":
    main()
