"""`make run` on a fresh copy of the repository: web, worker and the sandbox up within 90 seconds; Ctrl-C stops
them all cleanly (the worker is not SIGKILLed, make reports no error)."""

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
    # Sandbox mode (no vendor credentials), on free ports.
    env = {k: v for k, v in env.items() if not k.startswith(("FRESHBOOKS_", "ATLASSIAN_", "SANDBOX"))}
    sandbox_ports = [free_port() for _ in range(3)]
    env["FRESHBOOKS_API_URL"], env["ATLASSIAN_AUTH_URL"], env["ATLASSIAN_API_URL"] = (
        f"http://127.0.0.1:{p}" for p in sandbox_ports
    )
    log = open(tmp_path / "run.log", "w+")  # noqa: SIM115 - read back below
    proc = subprocess.Popen(
        ["make", "run"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    seen = {}
    try:
        while time.monotonic() < deadline and len(seen) < 4:
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            for url in (base + "/healthz/", base + "/admin/login/", env["FRESHBOOKS_API_URL"] + "/"):
                try:
                    if requests.get(url, timeout=2).status_code == 200:
                        seen[url] = True
                except requests.RequestException:
                    pass
            if (
                "Q Cluster" in (tmp_path / "run.log").read_text()
                and "running" in (tmp_path / "run.log").read_text()
            ):
                seen["worker"] = True
            time.sleep(1)
        assert len(seen) == 4, (
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
    log_text = (tmp_path / "run.log").read_text()
    assert "has stopped" in log_text, "the worker stopped cleanly:\n" + log_text[-3000:]
    assert "killing" not in log_text and "SIGKILL" not in log_text and "make: ***" not in log_text, log_text[
        -3000:
    ]
    assert (tmp_path / "sandbox-state.json").exists(), "the sandbox saved its state"
    assert (tmp_path / ".env").exists() and "FERNET_KEYS=" in (tmp_path / ".env").read_text()


@pytest.mark.skipif(not shutil.which("make"), reason="needs make")
def test_make_does_not_reinstall_when_pyproject_is_unchanged(tmp_path):
    """The installs are make targets stamped in .venv and keyed on pyproject.toml: once done, `make test` and
    `make run` go straight to their commands; a changed pyproject.toml installs again."""
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy2(ROOT / name, tmp_path / name)
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").touch()
    (tmp_path / ".venv" / ".installed-dev").touch()

    def planned():
        return subprocess.run(
            ["make", "-n", "install-dev"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout

    assert "pip install" not in planned()
    later = time.time() + 5
    os.utime(tmp_path / "pyproject.toml", (later, later))
    assert "pip install" in planned()
