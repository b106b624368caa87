"""A PostgreSQL server of the benchmark's own, in a temporary directory (initdb + pg_ctl from
/usr/lib/postgresql/*/bin), on a free loopback port: `make bench-faults` restarts it without touching any other
database on the machine. As root, the server runs as the `postgres` user (initdb refuses root)."""

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.e2e.processes import HOST, free_port


def bin_dir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    if not found:
        raise SystemExit(
            "No PostgreSQL server binaries under /usr/lib/postgresql/*/bin (Debian: postgresql)."
        )
    return Path(found[-1])


class TempPostgres:
    """listen: addresses besides loopback to listen on, trusted for any client of `allow` (a CIDR: the
    multi-host run's own network)."""

    def __init__(self, listen=(), allow=""):
        self.listen, self.allow = tuple(listen), allow
        self.bin = bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        self.data, self.log = self.root / "data", self.root / "server.log"
        self.port = free_port()
        self.url = f"postgres://postgres@{HOST}:{self.port}"
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *args):
        subprocess.run(
            [*self.as_user, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )

    def start(self):
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync")  # fmt: skip
        if self.allow:
            with (self.data / "pg_hba.conf").open("a") as hba:
                hba.write(f"host all all {self.allow} trust\n")
        self._start()
        return self

    def _start(self):
        addresses = ",".join((HOST, *self.listen))
        options = f"-p {self.port} -c listen_addresses={addresses} -k {self.root} -c max_connections=200"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start"
        )

    def restart(self, down_seconds=3.0):
        """Stop (fast: clients are disconnected), stay down `down_seconds`, start again."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        time.sleep(down_seconds)
        self._start()

    def stop(self):
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
