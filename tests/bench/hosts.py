"""The connector on several hosts (`make bench-hosts`; tests/e2e/test_hosts.py runs it small in CI).

Hosts of the run's own: Linux network namespaces, each joined by a veth pair to a bridge in this namespace, with
addresses on a /24 of the run's own (10.231.N.0/24, N from this process id):
    .1  this namespace: the bridge, the run's own PostgreSQL server (tests/bench/pgserver.py), the senders
    .2  web       gunicorn (the Procfile's `web`)
    .3  worker-a  a django-q2 cluster (the Procfile's `worker`)
    .4  worker-b  another cluster on the same ORM broker
    .5  vendors   the fake FreshBooks and Jira (tests/bench/vendorhost.py)
Traffic goes only to these addresses and loopback; every loop is bounded in count and time. Needs root and
iproute2 (`ip netns`): without them the run prints `skipped: <why>` and exits 0.

Phases, every delivery retried like FreshBooks until it is answered 200:
1. spread: deliveries, each sent twice (the second is a duplicate), processed by both worker hosts;
2. cut: deliveries while worker-a's cable is pulled (`ip link set <its veth> down`) and put back. It is pulled
   while worker-a has Jira creates in flight: until then the vendor host applies each create at once but answers
   it HOLD_SECONDS later, and the run waits (at most IN_FLIGHT_WAIT s) until it holds one per worker-a process.
   Those runs never hear Jira's answer: django-q2 stops them after Q_TIMEOUT, their events stay processing with
   their ledger links pending (row locked by sessions whose end never reaches PostgreSQL, which ends them once
   idle in a transaction for Q_TIMEOUT: config/database.py), and the broker hands their tasks out again after
   Q_RETRY. The cut lasts longer than Q_RETRY, so worker-b takes them over (or, for a task handed out before its
   event was stale, the run queued for then: worker-b, or worker-a after it returns) and adopts the issues the
   cut-off runs created;
3. web restart: deliveries while the web host's gunicorn is stopped and started again;
4. replay: `manage.py replay_events` of events already succeeded (they must add no issue; more than 50 wait
   for their turn in the bulk lane, whose feeder this process plays);
5. quota: the vendor host's Jira is told that the OAuth app's points pool is spent for `--pause-seconds`
   (every OAuth call answers 429 `jira-quota-global-based`, `Retry-After` counting down to the refill);
   deliveries meanwhile. The first worker to meet the 429 keeps the pause in the database; every worker process
   on both hosts checks it before each Jira call, so the events wait (Event.Status.WAITING) without calling
   Jira; after the refill this process plays the scheduler's one-minute `resume_waiting` sweep (every half
   second) and every event is created once. From the vendor host's request log (by sender address) it
   counts the Jira calls each host made after the first 429 and before the refill.
The tenant's Jira site is an OAuth 2.0 (3LO) one, reached through the vendor host's Jira as Atlassian's gateway
(`/ex/jira/<cloud id>/…`): only OAuth traffic is metered in points.
Prints the cut line (`cut: … with N Jira creates in flight on it (<object id> by <host> on run <n> <s> s after
the cut; …): events {…}; N taken over after their first run was cut off (by worker-b N, by worker-a after it
returned N); …`: taken over means finished by a second processing run), `hosts: 3` (web and two worker hosts),
`lost: N` (acknowledged deliveries without exactly one succeeded event and one issue), `duplicates: N` (issues or
succeeded events beyond one per invoice), the Jira calls each worker host made, `quota pause honoured by: N hosts` (worker hosts that, during the pause, let events wait and
made no Jira call beyond the in-flight ones) and `calls during pause: N` (Jira calls, by any host, after the
first 429 and before the refill: only requests already past their pause check when the pause was kept can come,
at most one per other worker process, so at most IN_FLIGHT_MOST), and appends them to tests/bench/RESULTS.md.
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.bench import common
from tests.bench.pgserver import TempPostgres
from tests.bench.vendorhost import CLOUD_ID, TOKEN
from tests.e2e.processes import ROOT, Process, wait_http

DB = "mlc_bench_hosts"
WEB_PORT = 8000
# Short broker retry and task timeout, so that tasks of a host cut off are handed to the other in seconds.
WORKER_ENV = {"Q_TIMEOUT": 10, "Q_RETRY": 12, "HTTP_READ_TIMEOUT": 5, "Q_WORKERS": 2}
WORKER_HOSTS = ("worker-a", "worker-b")
# Jira calls that may still come after the first quota 429: each other worker process (one task, so one request,
# at a time) may have passed its pause check before the pause was kept.
IN_FLIGHT_MOST = len(WORKER_HOSTS) * WORKER_ENV["Q_WORKERS"] - 1
WAITED_LINE = re.compile(r"Event (\d+) waiting for Jira's quota")
SUCCEEDED_LINE = re.compile(r"Event (\d+) succeeded")
# The cut phase: Jira's issue creates are held this long (less than HTTP_READ_TIMEOUT) until the cable is pulled,
# so that worker-a has creates in flight then; it is pulled once worker-a holds one per worker process, or
# IN_FLIGHT_WAIT seconds after the deliveries start, with what it holds then.
HOLD_SECONDS = 3.0
IN_FLIGHT_WAIT = 10.0
# Real-vendor mode (the sandbox only talks to loopback): the fakes stand in for the vendors at their own address.
VENDOR_ENV = {
    "SANDBOX": "0",
    "ALLOW_LOCAL_VENDOR_URLS": "1",
    "FRESHBOOKS_CLIENT_ID": "bench-fb-client",
    "FRESHBOOKS_CLIENT_SECRET": "bench-fb-secret",
    "ATLASSIAN_CLIENT_ID": "bench-atl-client",
    "ATLASSIAN_CLIENT_SECRET": "bench-atl-secret",
}
DONE_TIMEOUT = 300


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def unavailable():
    """Why hosts cannot be made here ("" when they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if not shutil.which("ip"):
        return "network namespaces need iproute2 (ip)"
    probe = f"mlcprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode:
        return f"ip netns add failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return ""


class Hosts:
    """Namespaces `<tag>-<name>` on the bridge `<tag>br` (address .1), with addresses .2, .3, … in the order
    of `names`. A context manager: everything it made is deleted on exit."""

    def __init__(self, names):
        n = os.getpid() % 250 + 1
        self.tag, net = f"mlc{n}", f"10.231.{n}"
        self.bridge, self.gateway, self.cidr = f"mlc{n}br", f"{net}.1", f"{net}.0/24"
        self.address = {name: f"{net}.{i}" for i, name in enumerate(names, 2)}
        self.veth = {name: f"mlc{n}v{i}" for i, name in enumerate(names, 2)}

    def ns(self, name):
        return f"{self.tag}-{name}"

    def prefix(self, name):
        """Argv prefix that runs a command on host `name`."""
        return ["ip", "netns", "exec", self.ns(name)]

    def __enter__(self):
        try:
            ip("link", "add", self.bridge, "type", "bridge")
            ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
            ip("link", "set", self.bridge, "up")
            for name, address in self.address.items():
                ns = self.ns(name)
                ip("netns", "add", ns)
                ip("link", "add", self.veth[name], "type", "veth", "peer", "name", "eth0", "netns", ns)
                ip("link", "set", self.veth[name], "master", self.bridge, "up")
                ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
                ip("-n", ns, "link", "set", "eth0", "up")
                ip("-n", ns, "link", "set", "lo", "up")
        except subprocess.CalledProcessError as exc:
            self.__exit__()
            raise SystemExit(f"could not make the hosts: {' '.join(exc.cmd)}: {exc.stderr.strip()}") from exc
        common.OWN_HOSTS.update([self.gateway, *self.address.values()])
        return self

    def cut(self, name):
        """Pull the host's cable: its end of the link loses carrier; packets to and from it are dropped."""
        ip("link", "set", self.veth[name], "down")

    def restore(self, name):
        ip("link", "set", self.veth[name], "up")

    def __exit__(self, *exc):
        for name in self.address:
            subprocess.run(["ip", "netns", "del", self.ns(name)], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


class Cluster:
    """The connector on the hosts: PostgreSQL here, vendors, web, and a worker on each worker host."""

    def __init__(self, hosts, log_dir):
        self.hosts, self.log_dir = hosts, Path(log_dir)
        self.pg = TempPostgres(listen=[hosts.gateway], allow=hosts.cidr).start()
        self.vendors = self.start_vendors()
        url = f"{self.pg.url}/{DB}"
        common.setup_django(url)
        self.env = common.prepare(
            url,
            FRESHBOOKS_API_URL=self.vendor_urls["freshbooks"],
            ATLASSIAN_API_URL=self.vendor_urls["jira"],
            ATLASSIAN_AUTH_URL=self.vendor_urls["jira"],  # never asked: the token outlives the run
            **WORKER_ENV,
            **VENDOR_ENV,
        )
        oauth_site(common.seed(self.vendor_urls["jira"]), f"{self.vendor_urls['jira']}/oauth/token")
        from django.db import connections

        connections.close_all()
        # The hosts reach PostgreSQL on the bridge; web answers on its own address.
        self.env.update(
            DATABASE_URL=f"postgres://postgres@{hosts.gateway}:{self.pg.port}/{DB}",
            ALLOWED_HOSTS=hosts.address["web"],
            WEB_BIND=f"{hosts.address['web']}:{WEB_PORT}",
            WEB_CONCURRENCY="2",
        )
        self.web = self.start("web")
        self.workers = {name: self.start(name) for name in WORKER_HOSTS}
        self.acked, self.sent = set(), set()

    def start_vendors(self):
        self.vendor_process = subprocess.Popen(
            [*self.hosts.prefix("vendors"), sys.executable, "-m", "tests.bench.vendorhost"]
            + [self.hosts.address["vendors"]],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(self.log_dir / "vendors.log").open("ab"),
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        line = self.vendor_process.stdout.readline()
        if not line:
            raise SystemExit(
                f"the vendor host did not start: {(self.log_dir / 'vendors.log').read_text()[-2000:]}"
            )
        self.vendor_urls = json.loads(line)
        return self.vendor_process

    def start(self, host):
        process = Process(
            "web" if host == "web" else "worker",
            self.env,
            self.log_dir / f"{host}.log",
            prefix=self.hosts.prefix(host),
        ).start()
        if host == "web":
            wait_http(f"http://{self.hosts.address['web']}:{WEB_PORT}/healthz/", process, 60)
        else:
            process.wait_log("running.", 60)
        return process

    def vendor_state(self, what, method="GET", **kwargs):
        """The vendor host's answer to `METHOD /_bench/<what>` (tests/bench/vendorhost.py), as JSON."""
        import requests

        from connector.sandbox.jira import API_TOKEN, EMAIL

        session = requests.Session()
        session.trust_env = False
        url = f"{self.vendor_urls['jira']}/_bench/{what}"
        return session.request(method, url, auth=(EMAIL, API_TOKEN), timeout=10, **kwargs).json()

    def deliver(self, ids, copies=1, over_seconds=0.0, retry_seconds=120):
        """Deliver invoice.create for `ids` (each `copies` times), spread evenly over `over_seconds`, each
        retried like FreshBooks until answered 200 (for at most `retry_seconds`)."""
        address = self.hosts.address["web"]
        payloads = [
            (common.raw_request("/webhooks/freshbooks/", WEB_PORT, *common.signed(n), host=address), str(n))
            for n in ids
            for _ in range(copies)
        ]
        gap = over_seconds / len(payloads)

        async def go():
            began, results = time.monotonic(), []

            async def one(index, payload):
                await asyncio.sleep(max(0.0, began + index * gap - time.monotonic()))
                until = time.monotonic() + retry_seconds
                found, _ = await common.load(WEB_PORT, [payload], 1, 300, until, host=address)
                results.extend(found)

            await asyncio.gather(*(one(i, p) for i, (p, _) in enumerate(payloads)))
            return results

        object_ids = dict(payloads)
        self.sent.update(object_ids.values())
        self.acked.update(
            object_ids[payload] for _, status, _, payload, _ in asyncio.run(go()) if status == 200
        )

    def wait_final(self):
        """Wait until no event is received, queued, processing or waiting for its turn as bulk work (a replay of
        more than 50 events goes through the bulk lane; this process plays the scheduler's one-minute
        `feed-bulk-work` every half second); returns {status: count}."""
        from django.db import connection
        from django.db.models import Count, Q

        from audit.models import Event
        from connector import bulk, waiting

        open_statuses = [Event.Status.RECEIVED, Event.Status.QUEUED, Event.Status.PROCESSING]
        unfinished = Q(status__in=open_statuses) | Q(status=Event.Status.WAITING, wait_reason=waiting.BULK)
        deadline = time.monotonic() + DONE_TIMEOUT
        while time.monotonic() < deadline:
            if not Event.objects.filter(unfinished).exists():
                statuses = dict(Event.objects.values_list("status").annotate(n=Count("id")))
                connection.close()
                return statuses
            bulk.feed()
            time.sleep(0.5)
        logs = "\n".join(p.log_text(1500) for p in self.workers.values())
        raise SystemExit(f"events still open after {DONE_TIMEOUT} s\n{logs}")

    def resume_until_final(self, object_ids):
        """Play the scheduler (`resume_waiting`, every half second) until no event of `object_ids` is open or
        waiting; returns {status: count} of those events."""
        from django.db import connection
        from django.db.models import Count

        from audit.models import Event
        from connector.tasks import resume_waiting

        events = Event.objects.filter(object_id__in=object_ids)
        unfinished = [
            Event.Status.RECEIVED,
            Event.Status.QUEUED,
            Event.Status.PROCESSING,
            Event.Status.WAITING,
        ]
        deadline = time.monotonic() + DONE_TIMEOUT
        while events.filter(status__in=unfinished).exists():
            if time.monotonic() > deadline:
                raise SystemExit(f"events still waiting or open after {DONE_TIMEOUT} s")
            resume_waiting()
            time.sleep(0.5)
        statuses = dict(events.values_list("status").annotate(n=Count("id")))
        connection.close()
        return statuses

    def succeeded_by_host(self, event_ids):
        """{worker host: ids of `event_ids` its log says succeeded there}."""
        found = {}
        for host in self.workers:
            text = (self.log_dir / f"{host}.log").read_text(errors="replace")
            found[host] = {int(n) for n in SUCCEEDED_LINE.findall(text)} & set(event_ids)
        return found

    def waited_by_host(self, event_ids):
        """{worker host: ids of `event_ids` its log says waited for Jira's quota}."""
        found = {}
        for host in self.workers:
            text = (self.log_dir / f"{host}.log").read_text(errors="replace")
            found[host] = {int(n) for n in WAITED_LINE.findall(text)} & set(event_ids)
        return found

    def tally(self):
        """(lost, duplicates) over every invoice delivered so far."""
        from audit.models import Event

        succeeded = {}
        for object_id in Event.objects.filter(
            status=Event.Status.SUCCEEDED, name="invoice.create", source=Event.Source.FRESHBOOKS
        ).values_list("object_id", flat=True):
            succeeded[object_id] = succeeded.get(object_id, 0) + 1
        issues = self.vendor_state("issues")
        lost = len(self.sent - self.acked) + sum(
            1 for n in self.acked if succeeded.get(n, 0) < 1 or issues.get(n, 0) < 1
        )
        duplicates = sum(n - 1 for n in issues.values() if n > 1)
        duplicates += sum(n - 1 for n in succeeded.values() if n > 1)
        return lost, duplicates

    def close(self):
        for process in (*self.workers.values(), self.web):
            if process.alive():
                process.stop()
        if self.vendor_process.poll() is None:
            self.vendor_process.stdin.close()
            try:
                self.vendor_process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.vendor_process.kill()
        from django.db import connections

        connections.close_all()
        self.pg.stop()


def oauth_site(tenant, token_url):
    """Make the tenant's Jira site an OAuth 2.0 (3LO) one through the vendor host's gateway: its calls spend
    the app's points pool (API-token traffic is not metered). `token_url`: the workers' ATLASSIAN_AUTH_URL's
    (tenants.safety refuses to send tokens anywhere else)."""
    from datetime import timedelta

    from django.utils import timezone

    from tenants.models import JiraSite

    site = JiraSite.objects.get(tenant=tenant)
    site.base_url, site.cloud_id = f"https://{tenant.slug}.atlassian.net", CLOUD_ID
    site.auth_method, site.access_token, site.refresh_token = JiraSite.AuthMethod.OAUTH2, TOKEN, "atl-refresh"
    site.token_expires_at = timezone.now() + timedelta(hours=6)
    site.token_url = token_url
    site.email = site.api_token = ""
    site.save()


def quota_phase(cluster, hosts, ids, pause_seconds):
    """Spend Jira's pool for `pause_seconds`, deliver `ids` over its first part, wait for the refill and resume.

    Returns (lines, honoured: hosts that let events wait and called Jira at most in flight, calls during pause).
    Deliveries end QUOTA_IN_CALL + 3 s before the refill, so that their events wait rather than sleep out the
    rest of the pause inside the call (a quota pause of at most QUOTA_IN_CALL seconds is slept)."""
    from audit.models import Event
    from connector.jira.quota import QUOTA_IN_CALL

    object_ids = [str(n) for n in ids]
    began = time.time()
    refill_at = cluster.vendor_state("quota", "POST", json={"seconds": pause_seconds})["refill_at"]
    cluster.deliver(ids, over_seconds=max(1.0, pause_seconds - QUOTA_IN_CALL - 3))
    waiting = 0
    while time.time() < refill_at - 0.5:  # bounded by the pause: the events that wait, just before the refill
        waiting = Event.objects.filter(object_id__in=object_ids, status=Event.Status.WAITING).count()
        time.sleep(0.25)
    time.sleep(max(0.0, refill_at - time.time()))
    statuses = cluster.resume_until_final(object_ids)

    calls = sorted(cluster.vendor_state(f"quota?since={began}")["calls"])
    refused = [call for call in calls if call[4] == 429]
    if not refused:
        raise SystemExit(f"no quota 429 in the quota phase: calls {calls[:20]}")
    first = refused[0]
    host_of = {address: host for host, address in hosts.address.items()}
    during = [call for call in calls if first[0] < call[0] < refill_at]
    event_ids = list(Event.objects.filter(object_id__in=object_ids).values_list("pk", flat=True))
    waited = cluster.waited_by_host(event_ids)
    per_host = {
        host: (len(waited[host]), sum(1 for call in during if host_of.get(call[1]) == host))
        for host in cluster.workers
    }
    honoured = [
        host for host, (events, made) in per_host.items() if events and made <= WORKER_ENV["Q_WORKERS"]
    ]
    shown = ", ".join(
        f"{host} let {events} events wait and called Jira {made} times"
        for host, (events, made) in per_host.items()
    )
    lines = [
        f"quota: Jira's OAuth pool spent for {pause_seconds:g} s, {len(ids)} invoices delivered meanwhile; "
        f"first 429 to {host_of.get(first[1], first[1])} {first[0] - began:.1f} s in ({first[5]}); "
        f"{waiting} events waiting just before the refill; during the pause {shown} "
        f"({sum(1 for call in during if call[4] == 429)} of the calls answered 429); "
        f"after the refill: events {statuses}",
        f"quota pause honoured by: {len(honoured)} hosts",
        f"calls during pause: {len(during)}",
    ]
    return lines, honoured, len(during)


def cut_phase(cluster, hosts, ids, cut_seconds):
    """Deliver `ids` while worker-a's cable is pulled for `cut_seconds` and put back; returns the printed line.

    The cable is pulled while worker-a has Jira creates in flight: until then the vendor host answers every create
    HOLD_SECONDS after applying it (`/_bench/slow`) and says whose answers it holds. Those issues exist in Jira,
    but worker-a never hears so: its runs keep their events processing and their ledger links pending (row
    locked), and their tasks unacknowledged in the broker, which hands them out again after Q_RETRY. The line
    says, for each of those events, which host finished it, on which processing run, and when."""
    from audit.models import Event

    address = hosts.address["worker-a"]
    cluster.vendor_state("slow", "POST", json={"seconds": HOLD_SECONDS})
    sender = threading.Thread(target=cluster.deliver, args=(ids,), kwargs={"over_seconds": cut_seconds + 4})
    sender.start()
    deadline, in_flight = time.monotonic() + IN_FLIGHT_WAIT, []
    while len(in_flight) < WORKER_ENV["Q_WORKERS"] and time.monotonic() < deadline:
        time.sleep(0.05)
        in_flight = cluster.vendor_state("slow")["held"].get(address, [])
    hosts.cut("worker-a")
    cut_at = time.time()
    cluster.vendor_state("slow", "POST", json={"seconds": 0})
    time.sleep(cut_seconds)
    hosts.restore("worker-a")
    sender.join()
    statuses = cluster.wait_final()

    events = Event.objects.filter(
        object_id__in=in_flight, name="invoice.create", status=Event.Status.SUCCEEDED
    )
    events = list(events.order_by("finished_at"))
    by_host = cluster.succeeded_by_host([event.pk for event in events])
    host_of = {pk: host for host, pks in by_host.items() for pk in pks}
    taken = [event for event in events if event.attempts > 1]
    runs = "; ".join(
        f"{event.object_id} by {host_of.get(event.pk, '?')} on run {event.attempts} "
        f"{event.finished_at.timestamp() - cut_at:.1f} s after the cut"
        for event in events
    )
    retaken = Event.objects.filter(object_id__in=[str(n) for n in ids], attempts__gt=1).count()
    return (
        f"cut: worker-a's cable pulled for {cut_seconds:g} s with {len(in_flight)} Jira creates in flight on it "
        f"({runs or 'none'}): events {statuses}; {len(taken)} taken over after their first run was cut off "
        f"(by worker-b {sum(1 for e in taken if host_of.get(e.pk) == 'worker-b')}, by worker-a after it "
        f"returned {sum(1 for e in taken if host_of.get(e.pk) == 'worker-a')}); {retaken} events of the phase "
        "run more than once"
    )


def replay_succeeded(cluster, count):
    """Replay `count` succeeded events through the workers (`manage.py replay_events --id …`)."""
    from audit.models import Event

    ids = list(Event.objects.filter(status=Event.Status.SUCCEEDED).values_list("pk", flat=True)[:count])
    env = {**cluster.env, "DATABASE_URL": f"{cluster.pg.url}/{DB}"}
    done = subprocess.run(
        [sys.executable, "manage.py", "replay_events", "--id", *map(str, ids)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"replay_events failed: {done.stderr[-2000:]}")
    return len(ids)


def run(count, cut_seconds, pause_seconds, log_dir):
    """The five phases on `count` invoices each; returns the printed lines, lost, duplicates, the Jira calls by
    worker host, the hosts that honoured the quota pause and the calls made during it."""
    lines = []
    with Hosts(["web", "worker-a", "worker-b", "vendors"]) as hosts:
        cluster = Cluster(hosts, log_dir)
        try:
            began = time.monotonic()
            cluster.deliver(range(7_000_000, 7_000_000 + count), copies=2, over_seconds=2)
            spread = cluster.wait_final()
            lines.append(f"spread: {count} invoices delivered twice each: events {spread}")

            lines.append(cut_phase(cluster, hosts, range(7_100_000, 7_100_000 + count), cut_seconds))

            ids = range(7_200_000, 7_200_000 + count)
            sender = threading.Thread(target=cluster.deliver, args=(ids,), kwargs={"over_seconds": 8})
            sender.start()
            time.sleep(2)
            cluster.web.stop()
            cluster.web = cluster.start("web")
            sender.join()
            lines.append(f"web restart mid-burst: events {cluster.wait_final()}")

            replayed = replay_succeeded(cluster, count // 2)
            time.sleep(1.0)
            lines.append(f"replay: {replayed} succeeded events replayed: events {cluster.wait_final()}")

            quota_lines, honoured, during = quota_phase(
                cluster, hosts, range(7_300_000, 7_300_000 + count), pause_seconds
            )
            lines += quota_lines

            lost, duplicates = cluster.tally()
            by_host = {
                host: cluster.vendor_state("clients").get(hosts.address[host], 0) for host in cluster.workers
            }
            lines += [
                f"Jira calls by worker host: {by_host}; {time.monotonic() - began:.0f} s in all",
                "hosts: 3",
                f"lost: {lost}",
                f"duplicates: {duplicates}",
            ]
            return lines, lost, duplicates, by_host, honoured, during
        finally:
            cluster.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=300, help="invoices per phase (default 300)")
    parser.add_argument(
        "--cut-seconds", type=float, default=20.0, help="how long worker-a is cut off (more than Q_RETRY, 12)"
    )
    parser.add_argument(
        "--pause-seconds", type=float, default=20.0, help="how long Jira's quota is spent (more than 5 + 4)"
    )
    args = parser.parse_args(argv)
    why = unavailable()
    if why:
        print(f"skipped: {why}")
        return
    log_dir = Path(tempfile.mkdtemp(prefix="bench-hosts-"))
    lines, *_ = run(args.invoices, args.cut_seconds, args.pause_seconds, log_dir)
    common.record(f"bench-hosts ({args.invoices} invoices a phase; logs in {log_dir})", lines)


if __name__ == "__main__":
    main()
