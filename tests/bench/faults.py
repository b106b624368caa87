"""Fault and load runs (`make bench-faults`), on a PostgreSQL server of the run's own (tests/bench/pgserver.py),
with the Procfile's web and worker (8 processes) and loopback fakes:

1. retry: 1,000 deliveries while the fake Jira fails 20% of its issue calls (5xx, read timeouts, 429 with
   Retry-After, 5xx after the write was applied) and the worker is SIGKILLed three times; the tenant has
   auto retry, whose back-off the run fast-forwards (due retry schedules are run at once). Every event must
   end succeeded.
2. replay: the same without auto retry: the failures stay visible (failed events); Jira recovers and one
   `manage.py replay_events --status failed` ends them succeeded.
3. restart: deliveries at a steady rate while PostgreSQL is stopped for a few seconds and started again: the
   web answers errors that FreshBooks retries, the worker reconnects by itself.
4. burst: 2,000 deliveries from 64 concurrent senders.

Every delivery is retried like FreshBooks until it is answered 200. Afterwards each delivered invoice must have
exactly one succeeded event and exactly one Jira issue. Prints per run and in total `lost: N` (acknowledged
deliveries without a succeeded event) and `duplicates: N` (second issues for one invoice), and appends them to
tests/bench/RESULTS.md. The worker runs with Q_TIMEOUT 10 / Q_RETRY 12 so that a killed run is taken over in
seconds rather than minutes, and HTTP_READ_TIMEOUT 1 s (the fake's timeouts last 1.5 s).
"""

import argparse
import asyncio
import logging
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.bench import common
from tests.bench.pgserver import TempPostgres
from tests.e2e.processes import ROOT, free_port, start_web, start_worker

DB = "mlc_bench_faults"
# 8 worker processes: an event whose create was answered 5xx or timed out waits ~7 s for Jira's search
# (connector.retry.SEARCH_RETRY_DELAYS) before writing again, asleep, not using CPU.
WORKER_ENV = {"Q_TIMEOUT": 10, "Q_RETRY": 12, "HTTP_READ_TIMEOUT": 1, "Q_WORKERS": 8}
DONE_TIMEOUT = 600


class Run:
    """One run's stack: database recreated and seeded, fakes, web, worker; `close()` stops it all."""

    def __init__(self, url, name, log_dir, fault_rate=0.0, auto_retry=False):
        from tests.bench.fakes import fast_freshbooks, fast_jira  # needs Django set up

        self.url, self.name, self.log_dir = url, name, Path(log_dir)
        self.fb, self.jira = fast_freshbooks(), fast_jira(validate=False, rate=fault_rate)
        self.jira.httpd.handle_error = lambda request, address: None  # the worker hung up on a "timeout"
        self.env = common.prepare(url, FRESHBOOKS_API_URL=self.fb.url, **WORKER_ENV)
        common.seed(self.jira.url, auto_retry=auto_retry)
        self.port = free_port()
        self.web = start_web(self.env, self.log_dir / f"web-{name}.log", self.port, workers=4)
        self.worker = self.start_worker()
        self.sent, self.acked, self.tries = set(), set(), 0

    def start_worker(self):
        from django.db import connections

        connections.close_all()
        return start_worker(
            self.env, self.log_dir / f"worker-{self.name}.log", workers=WORKER_ENV["Q_WORKERS"]
        )

    def deliver(self, ids, concurrency, rate=None, retry_seconds=120):
        """Deliver invoice.create for `ids`, each retried like FreshBooks until answered 200 (at most
        `retry_seconds`); all at once with `concurrency` senders, or one every 1/`rate` s. Records the ids
        answered 200 in `acked`, the tries in `tries`."""
        payloads = {
            common.raw_request("/webhooks/freshbooks/", self.port, *common.signed(n)): str(n) for n in ids
        }

        async def go():
            if rate is None:
                done, _ = await common.load(self.port, list(payloads), concurrency, 600,
                                            time.monotonic() + retry_seconds)  # fmt: skip
                return done
            began, results = time.monotonic(), []

            async def one(index, payload):
                await asyncio.sleep(max(0.0, began + index / rate - time.monotonic()))
                found, _ = await common.load(self.port, [payload], 1, 600, time.monotonic() + retry_seconds)
                results.extend(found)

            await asyncio.gather(*(one(i, p) for i, p in enumerate(payloads)))
            return results

        done = asyncio.run(go())
        self.sent.update(payloads.values())
        self.acked.update(payloads[payload] for _, status, _, payload, _ in done if status == 200)
        self.tries += sum(tries for *_, tries in done)

    def fast_forward_retries(self, stop):
        """Run automatic-retry schedules as soon as they exist (the back-off clock, compressed)."""
        from django.db import connection
        from django.utils import timezone
        from django_q.models import Schedule
        from django_q.scheduler import scheduler

        logging.getLogger("django-q").setLevel(logging.WARNING)
        while not stop.is_set():
            try:
                Schedule.objects.filter(func="connector.tasks.process_event").update(next_run=timezone.now())
                scheduler()
            except Exception:  # the database may be restarting: try again
                connection.close()
            stop.wait(1.0)
        connection.close()

    def wait_final(self, expect_failed=False):
        """Wait until no event is queued/processing and no retry is scheduled; returns {status: count}."""
        from django.db import connection
        from django.db.models import Count
        from django_q.models import Schedule

        from audit.models import Event

        deadline = time.monotonic() + DONE_TIMEOUT
        while time.monotonic() < deadline:
            try:
                open_ = Event.objects.filter(
                    status__in=[Event.Status.QUEUED, Event.Status.PROCESSING]
                ).count()
                retries = Schedule.objects.filter(func="connector.tasks.process_event").count()
                if not open_ and not retries:
                    return dict(Event.objects.values_list("status").annotate(n=Count("id")))
            except Exception:
                connection.close()
            time.sleep(0.5)
        raise SystemExit(f"{self.name}: events still open after {DONE_TIMEOUT} s\n{self.worker.log_text()}")

    def tally(self):
        """(lost, duplicates): deliveries never acknowledged or acknowledged invoices without a succeeded event
        and an issue; second issues (or second succeeded events) for one invoice."""
        from audit.models import Event
        from tests.bench.fakes import issues_by_object

        succeeded = {}
        for object_id in Event.objects.filter(status=Event.Status.SUCCEEDED).values_list(
            "object_id", flat=True
        ):
            succeeded[object_id] = succeeded.get(object_id, 0) + 1
        issues = issues_by_object(self.jira)
        lost = len(self.sent - self.acked) + sum(
            1 for n in self.acked if succeeded.get(n, 0) < 1 or issues.get(n, 0) < 1
        )
        duplicates = sum(n - 1 for n in issues.values() if n > 1) + sum(
            n - 1 for n in succeeded.values() if n > 1
        )
        return lost, duplicates

    def close(self):
        for process in (self.worker, self.web):
            if process is not None and process.alive():
                process.stop()
        self.fb.close()
        self.jira.close()
        from django.db import connections

        connections.close_all()


def run_retry(url, log_dir, count, kills=3):
    run = Run(url, "retry", log_dir, fault_rate=0.2, auto_retry=True)
    stop = threading.Event()
    ticker = threading.Thread(target=run.fast_forward_retries, args=(stop,), daemon=True)
    try:
        ticker.start()
        sender = threading.Thread(target=run.deliver, args=(range(4_000_000, 4_000_000 + count), 16))
        sender.start()
        for _ in range(kills):  # SIGKILL the whole cluster mid-run, then start it again
            time.sleep(4)
            run.worker.kill()
            run.worker = run.start_worker()
        sender.join()
        statuses = run.wait_final()
        lost, duplicates = run.tally()
        faults = dict(run.jira.state["faults"])
        return [f"retry: {count} deliveries, Jira failing 20% of issue calls {faults}, worker SIGKILLed {kills}×, "
                f"auto retry: events {statuses}; lost: {lost}, duplicates: {duplicates}"], lost, duplicates  # fmt: skip
    finally:
        stop.set()
        ticker.join(timeout=5)
        run.close()


def run_replay(url, log_dir, count):
    run = Run(url, "replay", log_dir, fault_rate=0.2, auto_retry=False)
    try:
        run.deliver(range(5_000_000, 5_000_000 + count), 16)
        before = run.wait_final()
        run.jira.rate = 0.0  # Jira recovers; one replay of the failed events
        replay = subprocess.run(
            [sys.executable, "manage.py", "replay_events", "--tenant", common.TENANT_SLUG, "--status", "failed"],
            cwd=ROOT, env=run.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if replay.returncode:
            raise SystemExit(f"replay_events failed: {replay.stderr}")
        after = run.wait_final()
        lost, duplicates = run.tally()
        return [f"replay: {count} deliveries, Jira failing 20% {dict(run.jira.state['faults'])}, no auto retry: "
                f"before replay {before}, after one replay {after}; lost: {lost}, duplicates: {duplicates}"], lost, duplicates  # fmt: skip
    finally:
        run.close()


def run_restart(url, log_dir, server, count, rate):
    run = Run(url, "restart", log_dir)
    try:
        sender = threading.Thread(target=run.deliver, args=(range(6_000_000, 6_000_000 + count), 1, rate))
        sender.start()
        time.sleep(count / rate / 3)
        server.restart(down_seconds=3)
        sender.join()
        statuses = run.wait_final()
        lost, duplicates = run.tally()
        return [f"restart: {count} deliveries at {rate:g}/s, PostgreSQL stopped 3 s and started again mid-run "
                f"({run.tries - count} retries): events {statuses}; lost: {lost}, duplicates: {duplicates}"], lost, duplicates  # fmt: skip
    finally:
        run.close()


def run_burst(url, log_dir, count, senders):
    run = Run(url, "burst", log_dir)
    try:
        started = time.monotonic()
        run.deliver(range(7_000_000, 7_000_000 + count), senders)
        took = time.monotonic() - started
        statuses = run.wait_final()
        lost, duplicates = run.tally()
        return [f"burst: {count} deliveries from {senders} concurrent senders, all acknowledged in {took:.1f} s: "
                f"events {statuses}; lost: {lost}, duplicates: {duplicates}"], lost, duplicates  # fmt: skip
    finally:
        run.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="deliveries of the retry and replay runs")
    parser.add_argument("--restart-events", type=int, default=600, help="deliveries of the restart run")
    parser.add_argument("--rate", type=float, default=40.0, help="deliveries/s of the restart run")
    parser.add_argument("--burst", type=int, default=2000, help="deliveries of the burst")
    parser.add_argument("--senders", type=int, default=64, help="concurrent senders of the burst")
    parser.add_argument("--kills", type=int, default=3, help="worker SIGKILLs during the retry run")
    args = parser.parse_args(argv)
    server = TempPostgres().start()
    try:
        url = common.local(f"{server.url}/{DB}")
        common.setup_django(url)
        log_dir = tempfile.mkdtemp(prefix="bench-faults-")
        lines, lost, duplicates = [], 0, 0
        for job in (
            lambda: run_retry(url, log_dir, args.events, args.kills),
            lambda: run_replay(url, log_dir, args.events),
            lambda: run_restart(url, log_dir, server, args.restart_events, args.rate),
            lambda: run_burst(url, log_dir, args.burst, args.senders),
        ):
            found, n_lost, n_dup = job()
            print("\n".join(found), flush=True)
            lines += found
            lost, duplicates = lost + n_lost, duplicates + n_dup
        lines += [f"logs: {log_dir}", f"lost: {lost}", f"duplicates: {duplicates}"]
        common.record("Faults and load (make bench-faults)", lines)
        if lost or duplicates:
            raise SystemExit(1)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
