"""`make run` on a fresh copy of the repository: web and worker up within 90 seconds, Ctrl-C stops both."""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest
import requests

from tests import ROOT


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_copy(target):
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


@pytest.mark.skipif(not shutil.which("make") or not shutil.which("git"), reason="needs make and git")
def test_make_run_serves_health_and_admin_and_starts_a_worker(tmp_path):
    fresh_copy(tmp_path)
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_", "SECRET_KEY", "FERNET_KEYS", "VIRTUAL_ENV", "PYTEST"))
    }
    env["WEB_BIND"] = f"127.0.0.1:{port}"
    log = open(tmp_path / "run.log", "w+")  # noqa: SIM115 - read back below
    proc = subprocess.Popen(
        ["make", "run"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    seen = {}
    try:
        while time.monotonic() < deadline and len(seen) < 3:
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            for path in ("/healthz/", "/admin/login/"):
                try:
                    if requests.get(base + path, timeout=2).status_code == 200:
                        seen[path] = True
                except requests.RequestException:
                    pass
            if (
                "Q Cluster" in (tmp_path / "run.log").read_text()
                and "running" in (tmp_path / "run.log").read_text()
            ):
                seen["worker"] = True
            time.sleep(1)
        assert len(seen) == 3, (
            f"after 90 s only {sorted(seen)} were up:\n" + (tmp_path / "run.log").read_text()[-3000:]
        )
        assert requests.get(base + "/healthz/", timeout=5).json()["database"] == "ok"
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's process group
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    with pytest.raises(requests.RequestException):
        requests.get(base + "/healthz/", timeout=2)
    assert (tmp_path / ".env").exists() and "FERNET_KEYS=" in (tmp_path / ".env").read_text()
