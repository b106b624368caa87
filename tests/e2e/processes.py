"""The Procfile's processes as real subprocesses: gunicorn (`web`) and the django-q2 cluster (`worker`).

Each entry runs as `bash -c "exec <Procfile command>"` in its own process group, with this interpreter's
bin directory first on PATH (so `gunicorn` and `python` are the virtualenv's), its output in a log file.
Used by the end-to-end tests (tests/e2e) and the benchmarks (tests/bench). Loopback only.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
TICK = os.sysconf("SC_CLK_TCK")


def procfile():
    """{name: command} of the Procfile."""
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if command.strip() and not name.startswith("#"):
            entries[name.strip()] = command.strip()
    return entries


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def group_pids(pgid):
    """Live pids of a process group (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def cpu_seconds(pids):
    """User + system CPU seconds of `pids` themselves (not their reaped children: a sampler sees those while
    they live); vanished ones count 0."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


def peak_rss_mb(pids):
    """{pid: peak resident set size in MB (VmHWM)} of `pids`."""
    peaks = {}
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks[pid] = int(line.split()[1]) / 1024
        except OSError:
            continue
    return peaks


class Process:
    """One Procfile entry (`web` or `worker`) started with `env`, logging to `log_path`; `prefix` runs it through
    another command first (e.g. `ip netns exec HOST`, which keeps the pid)."""

    def __init__(self, name, env, log_path, prefix=()):
        self.name, self.env, self.log_path = name, dict(env), Path(log_path)
        self.prefix = list(prefix)
        self.popen = None
        self.offset = 0

    def start(self):
        self.offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        bin_dir = str(Path(sys.executable).parent)
        env = {
            **self.env,
            "PATH": os.pathsep.join([bin_dir, self.env.get("PATH", os.environ.get("PATH", ""))]),
        }
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                [*self.prefix, "bash", "-c", "exec " + procfile()[self.name]], cwd=ROOT, env=env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        return self

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def pids(self):
        return group_pids(self.pid) if self.popen is not None else []

    def kill(self):
        """SIGKILL the whole process group (a crash, an OOM kill): nothing gets to clean up."""
        self._signal_group(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, timeout=20.0):
        """SIGTERM the main process (as honcho or systemd would) and wait; returns the seconds it took.

        Past `timeout` the group is SIGKILLed and None is returned."""
        if not self.alive():
            return 0.0
        started = time.monotonic()
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        took = time.monotonic() - started
        self._signal_group(signal.SIGKILL)  # any orphan the main process left behind
        return took

    def _signal_group(self, sig):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)

    def log_text(self, last=4000):
        try:
            return self.log_path.read_text(errors="replace")[-last:]
        except OSError:
            return ""

    def wait_log(self, text, timeout=30.0):
        """Wait until `text` appears in the log (e.g. the cluster's "running"); raises on exit or timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_path.read_bytes()[self.offset :].decode(errors="replace"):
                return
            if not self.alive():
                raise RuntimeError(f"{self.name} exited: {self.log_text()}")
            time.sleep(0.1)
        raise RuntimeError(f"{self.name}: no {text!r} in its log after {timeout} s: {self.log_text()}")


def wait_http(url, process, timeout=30.0):
    """Wait until GET `url` answers 200 (the web is up); raises on exit or timeout."""
    deadline = time.monotonic() + timeout
    session = requests.Session()
    session.trust_env = False
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited: {process.log_text()}")
        try:
            if session.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 in {timeout} s: {process.log_text()}")


def start_web(env, log_path, port, workers=2, timeout=30.0):
    web = Process(
        "web", {**env, "WEB_BIND": f"{HOST}:{port}", "WEB_CONCURRENCY": str(workers)}, log_path
    ).start()
    wait_http(f"http://{HOST}:{port}/healthz/", web, timeout)
    return web


def start_worker(env, log_path, workers=1, timeout=60.0):
    worker = Process("worker", {**env, "Q_WORKERS": str(workers)}, log_path).start()
    worker.wait_log("running.", timeout)
    return worker
