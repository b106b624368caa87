"""Smoke runs of every benchmark script with tiny counts, so that `make bench` and `make bench-faults` cannot
rot: each script runs as a subprocess against the local PostgreSQL server of the test database (and Redis when
one answers on 127.0.0.1:6379) and must print its headline lines. The figures are not judged here."""

import os
import re
import socket
import subprocess
import sys

import pytest
from django.db import connection

from tests.e2e.processes import ROOT

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        connection.vendor != "postgresql"
        or (connection.settings_dict.get("HOST") or "127.0.0.1") != "127.0.0.1",
        reason="the benchmarks need a PostgreSQL server on 127.0.0.1 (CI: DATABASE_URL=postgres://…)",
    ),
]


def redis_url():
    with socket.socket() as s:
        s.settimeout(0.5)
        return "redis://127.0.0.1:6379/14" if s.connect_ex(("127.0.0.1", 6379)) == 0 else ""


def bench(tmp_path, module, *args):
    s = connection.settings_dict
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    env = {
        **os.environ,
        "BENCH_POSTGRES": f"postgres://{s.get('USER') or 'postgres'}{password}@127.0.0.1:{s.get('PORT') or 5432}",
        "BENCH_REDIS_URL": redis_url(),
        "BENCH_RESULTS": str(tmp_path / "RESULTS.md"),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "-m", f"tests.bench.{module}", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=400,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert (tmp_path / "RESULTS.md").read_text().count("### ") == 1
    return done.stdout


def headline(output, pattern):
    found = re.search(rf"^{pattern}$", output, re.M)
    assert found, output[-3000:]
    return found


def test_ingest(tmp_path):
    out = bench(tmp_path, "ingest", "--requests", "60", "--rounds", "2", "--concurrency", "4", "--workers", "1",
                "--database", "mlc_bench_smoke_ingest")  # fmt: skip
    headline(out, r"ratio webhook/floor: \d+\.\d\d")
    assert "floor " in out and "webhook " in out and "trivial " in out


def test_ingest_compares_with_another_build(tmp_path):
    """--compare serves the webhook of a git ref (here this very commit) beside this build's, in the same rounds."""
    options = ["--requests", "40", "--rounds", "1", "--concurrency", "4", "--workers", "1", "--redis-url", ""]
    out = bench(tmp_path, "ingest", *options, "--database", "mlc_bench_smoke_compare", "--compare", "HEAD")
    headline(out, r"  ORM: webhook/webhook@HEAD \d+\.\d\d .*")


def test_e2e(tmp_path):
    out = bench(tmp_path, "e2e", "--rate", "10", "--seconds", "2", "--database", "mlc_bench_smoke_e2e")
    headline(out, r"e2e p99: \d+ ms")


def test_drain(tmp_path):
    out = bench(tmp_path, "drain", "--events", "30", "--small", "15", "--large", "30",
                "--database", "mlc_bench_smoke_drain")  # fmt: skip
    headline(out, r"drain: \d+ events/s")


def test_faults(tmp_path):
    out = bench(tmp_path, "faults", "--events", "40", "--restart-events", "30", "--rate", "15", "--burst", "60",
                "--senders", "16", "--kills", "1")  # fmt: skip
    headline(out, "lost: 0")
    headline(out, "duplicates: 0")


def test_quota(tmp_path):
    out = bench(tmp_path, "quota", "--events", "20", "--window", "8", "--backfill", "60", "--live", "10",
                "--backlog", "100", "--database", "mlc_bench_smoke_quota")  # fmt: skip
    headline(out, "quota failures: 0")
    headline(out, r"points per issue: \d+\.\d\d")
    headline(out, r"backfill requests per 1000: \d+")
    headline(out, r"fairness p99 ratio: \d+\.\d\d")
