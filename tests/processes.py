"""Subprocesses of the end-to-end tests (qcluster, gunicorn) on the test database, each in its own process
group with its output in a log file that is printed (its tail) when it stops."""

import os
import signal
import subprocess
from pathlib import Path

from django.db import connection

from tests import ROOT


def database_url():
    """DATABASE_URL of the test database, for subprocesses."""
    settings = connection.settings_dict
    user = settings.get("USER") or "postgres"
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or "5432"
    return f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"


def environment(fake_url, **extra):
    """The environment of a subprocess on the test database whose vendor URLs all point at the loopback fake
    `fake_url` (nothing may leave loopback), with `extra` variables on top."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "FRESHBOOKS_API_URL": fake_url,
        "FRESHBOOKS_AUTH_URL": fake_url,
        "ATLASSIAN_AUTH_URL": fake_url,
        "ATLASSIAN_API_URL": fake_url,
        "Q_POLL": "0.2",
        "CONN_MAX_AGE": "0",
        **extra,
    }


def start(args, env, log_path):
    """(process, log file) of `args` run from the repository root."""
    log = Path(log_path).open("w")  # noqa: SIM115 (kept open for the subprocess, closed by stop)
    process = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    return process, log


def stop(process, log, log_path, tail=3000):
    """SIGTERM the process group (SIGKILL after 20 s), close the log and print its tail."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    log.close()
    print(Path(log_path).name, Path(log_path).read_text()[-tail:])
