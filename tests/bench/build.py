"""Another build of the application, served beside this one for side-by-side figures (`make bench-ingest
BENCH_ARGS="--compare <git ref>"`): the ref checked out in a temporary git worktree, with a database of its own
(migrated and seeded by that build's own code, tests/bench/common.py), and the Procfile's `web` started from it.

Both builds then take turns in the same interleaved rounds on the same machine and PostgreSQL server, so a change
is measured against the build before it under the same background load. Loopback only, like every benchmark.
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.bench import common
from tests.e2e.processes import HOST, Process, wait_http

SEED = (
    "import sys\n"
    "from tests.bench import common\n"
    "url, redis_url = sys.argv[1], sys.argv[2]\n"
    "common.setup_django(url, redis_url)\n"
    "common.prepare(url, redis_url)\n"
    "common.seed('http://127.0.0.1:9/')\n"  # no worker runs: Jira is never called
)


class Build:
    """`ref` of this repository in a temporary worktree (removed by `close`)."""

    def __init__(self, ref):
        self.ref = ref
        self.root = Path(tempfile.mkdtemp(prefix="bench-build-")) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--quiet", str(self.root), ref],
            cwd=common.ROOT,
            check=True,
        )

    def env(self, url, redis_url=""):
        """The environment of this build's processes: its own code first on the path, its own database."""
        return {**common.app_env(url, redis_url), "PYTHONPATH": str(self.root)}

    def prepare(self, url, redis_url=""):
        """Recreate, migrate and seed `url` with this build's code; returns its processes' environment."""
        env = self.env(url, redis_url)
        subprocess.run([sys.executable, "-c", SEED, url, redis_url], cwd=self.root, env=env, check=True)
        return env

    def start_web(self, env, log_path, port, workers):
        web = BuildProcess(
            self.root, "web", {**env, "WEB_BIND": f"{HOST}:{port}", "WEB_CONCURRENCY": str(workers)}, log_path
        ).start()
        wait_http(f"http://{HOST}:{port}/healthz/", web, 60)
        return web

    def close(self):
        subprocess.run(["git", "worktree", "remove", "--force", str(self.root)], cwd=common.ROOT, check=False)
        shutil.rmtree(self.root.parent, ignore_errors=True)


class BuildProcess(Process):
    """A Procfile entry of the build at `root`, run from there."""

    def __init__(self, root, name, env, log_path):
        super().__init__(name, env, log_path)
        self.root = root

    def start(self):
        import os

        command = next(
            line.partition(":")[2].strip()
            for line in (self.root / "Procfile").read_text().splitlines()
            if line.partition(":")[0].strip() == self.name
        )
        path = os.pathsep.join([str(Path(sys.executable).parent), self.env.get("PATH", "")])
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                ["bash", "-c", "exec " + command],
                cwd=self.root,
                env={**self.env, "PATH": path},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self
