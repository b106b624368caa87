"""Shared parts of the benchmarks (`make bench`, `make bench-faults`): a dedicated local database, the seeded
tenant, fast loopback fakes, load senders, CPU and memory readings, and the results file.

Loopback only: every URL is checked to be 127.0.0.1/localhost, or an address of the run's own hosts (network
namespaces that tests/bench/hosts.py made, registered in OWN_HOSTS). Not a pytest module (no test_ prefix).
"""

import asyncio
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = "tests.bench.settings"
# The dated results file docs/testing.md links; BENCH_RESULTS elsewhere (the CI smoke run writes to a temporary file).
RESULTS = Path(os.environ.get("BENCH_RESULTS") or ROOT / "tests" / "bench" / "RESULTS.md")
HOST = "127.0.0.1"
VERIFIER = "bench-verifier-0123456789"
DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432"
DEFAULT_REDIS = "redis://127.0.0.1:6379/14"
TENANT_SLUG = "bench"
OWN_HOSTS = set()  # addresses of the namespaces this run made (tests/bench/hosts.py)


def local(url):
    if urlsplit(url).hostname not in ("127.0.0.1", "localhost", *OWN_HOSTS):
        sys.exit(f"The benchmarks only talk to local servers (127.0.0.1), not {url}.")
    return url


def database_url(name):
    """postgres://…/<name> on BENCH_POSTGRES (default the local server); names start with mlc_bench."""
    return local(f"{os.environ.get('BENCH_POSTGRES', DEFAULT_SERVER).rstrip('/')}/{name}")


def recreate_database(url, template=None):
    """Drop and create the database of `url` (empty, or a copy of `template`)."""
    import psycopg

    parts = urlsplit(local(url))
    name = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))


_migrated = set()  # databases of this process already migrated once: later runs copy <name>_tpl


def app_env(url, redis_url="", **extra):
    """The environment of the benchmark's processes (this one, gunicorn, the cluster)."""
    # SANDBOX=0: the benchmark's tenant holds connections (to the loopback fakes), which sandbox mode refuses.
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE=SETTINGS,
        DATABASE_URL=local(url),
        PYTHONPATH=str(ROOT),
        SANDBOX="0",
    )
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = local(redis_url)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def setup_django(url, redis_url=""):
    """Point this process at the benchmark's database (and broker) and set Django up: before importing the
    fakes or any model. One database per process."""
    import django

    os.environ.update(app_env(url, redis_url))
    django.setup()


def prepare(url, redis_url="", **extra):
    """Recreate and migrate the database (set up by setup_django); returns the processes' environment."""
    from django.db import connections
    from django_q.models import Schedule

    connections.close_all()
    env = app_env(url, redis_url, **extra)
    name = urlsplit(url).path.lstrip("/")
    if url in _migrated:
        recreate_database(url, template=f"{name}_tpl")
    else:
        recreate_database(url)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
        )
        recreate_database(f"{url.rsplit('/', 1)[0]}/{name}_tpl", template=name)
        _migrated.add(url)

    Schedule.objects.all().delete()  # only what the benchmark enqueues runs
    if redis_url:
        purge_redis(redis_url)
    return env


def purge_redis(redis_url):
    """Drop the tasks an earlier run left in the Redis broker (django-q2's list: django_q:<cluster name>:q).

    This process's own Django runs on the ORM broker settings, so django-q2's purge_queue would miss it."""
    import redis
    from django.conf import settings

    redis.Redis.from_url(local(redis_url)).delete(f"django_q:{settings.Q_CLUSTER['name']}:q")


def seed(jira_url, events=("invoice.create",), auto_retry=False):
    """The tenant: FreshBooks account (token the fake accepts), verified callbacks, Jira site, default mappings."""
    from datetime import timedelta

    from django.utils import timezone

    from connector.defaults import create_default_mappings
    from connector.sandbox.freshbooks import ACCESS_TOKEN, ACCOUNT_ID, BUSINESS_ID
    from connector.sandbox.jira import API_TOKEN, EMAIL
    from tenants.models import ConnectionStatus, FreshBooksAccount, FreshBooksWebhook, JiraSite, Tenant

    tenant = Tenant.objects.create(name="Bench", slug=TENANT_SLUG, auto_retry=auto_retry)
    account = FreshBooksAccount.objects.create(
        tenant=tenant, account_id=ACCOUNT_ID, business_id=BUSINESS_ID, business_name="Bench Books",
        access_token=ACCESS_TOKEN, refresh_token="fb-refresh", status=ConnectionStatus.CONNECTED,
        token_expires_at=timezone.now() + timedelta(hours=6),
    )  # fmt: skip
    for n, event in enumerate(events, 1):
        FreshBooksWebhook.objects.create(
            account=account,
            callback_id=n,
            event=event,
            uri="https://bench.test/",
            verifier=VERIFIER,
            verified=True,
        )
    JiraSite.objects.create(
        tenant=tenant, base_url=jira_url, deployment="cloud", auth_method=JiraSite.AuthMethod.BASIC,
        email=EMAIL, api_token=API_TOKEN, status=ConnectionStatus.CONNECTED,
    )  # fmt: skip
    create_default_mappings(tenant, "FIN")
    return tenant


# --- deliveries -----------------------------------------------------------------------------------------------


def delivery_fields(object_id, name="invoice.create"):
    from connector.sandbox.freshbooks import ACCOUNT_ID, BUSINESS_ID

    return {"name": name, "object_id": str(object_id), "account_id": ACCOUNT_ID, "business_id": BUSINESS_ID,
            "identity_id": "1234", "user_id": "1"}  # fmt: skip


def signed(object_id, name="invoice.create"):
    """(form body, X-FreshBooks-Hmac-SHA256) of one delivery, signed the way FreshBooks signs."""
    from connector.freshbooks import signature

    fields = delivery_fields(object_id, name)
    return urlencode(list(fields.items())).encode(), signature.compute(fields, VERIFIER)


def raw_request(path, port, body, sig, host=HOST):
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: FreshHooks/bench\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
        f"X-FreshBooks-Hmac-SHA256: {sig}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def send(port, payload, timeout=10, host=HOST):
    """One request on a new connection (as a webhook sender does); returns the status, 0 on failure."""

    async def go():
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(payload)
            await writer.drain()
            data = await reader.read()
        finally:
            writer.close()
        return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0

    try:
        return await asyncio.wait_for(go(), timeout)
    except (TimeoutError, OSError, ValueError, IndexError):
        return 0


async def load(port, payloads, concurrency, max_seconds=120, retry_until=None, host=HOST):
    """Send every payload with `concurrency` senders. Returns ([(latency s, status, done at, payload, tries)],
    wall s).

    retry_until: a monotonic deadline until which a payload not answered 200 is sent again (FreshBooks'
    retries); the latency is then that of the last try."""
    queue = iter(payloads)
    results = []
    deadline = time.monotonic() + max_seconds

    async def sender():
        for payload in queue:
            if time.monotonic() > deadline:
                return
            tries = 0
            while True:
                tries += 1
                started = time.perf_counter()
                status = await send(port, payload, host=host)
                if status == 200 or retry_until is None or time.monotonic() > retry_until:
                    break
                await asyncio.sleep(0.2)
            results.append((time.perf_counter() - started, status, time.time(), payload, tries))

    began = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return results, time.perf_counter() - began


def percentile(values, p):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# --- processes and resources ----------------------------------------------------------------------------------


def backend_pids(url):
    """PostgreSQL backends serving the database of `url` (not this reading's own)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [row[0] for row in rows]


class CpuMeter:
    """CPU seconds of changing process sets, sampled (a backend that exits between samples keeps its last
    reading): call sample() now and then, total() at the end."""

    def __init__(self):
        self.first, self.last = {}, {}

    def sample(self, pids):
        from tests.e2e.processes import cpu_seconds

        for pid in pids:
            now = cpu_seconds([pid])
            self.first.setdefault(pid, now)
            self.last[pid] = now

    def total(self):
        return sum(self.last[p] - self.first[p] for p in self.last)


def machine():
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024
    except (OSError, ValueError, IndexError):
        mem = 0
    return f"{platform.node() or 'host'}: {os.cpu_count()} CPUs ({model or platform.machine()}), {mem} GB RAM, Python {platform.python_version()}"


def record(title, lines):
    """Print the figures and append them, dated, to tests/bench/RESULTS.md."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    for line in lines:
        print(line, flush=True)
    with RESULTS.open("a") as out:
        out.write(f"\n### {title} — {stamp}\n\n{machine()}\n\n```\n" + "\n".join(lines) + "\n```\n")
