"""`make run`: the Procfile's processes in the foreground (web, worker, and the sandbox in sandbox mode).

Usage: python -m config.run [PROCESS ...]. Without names: web and worker, plus the sandbox in sandbox mode
(settings.SANDBOX, decided by config/settings.py from the environment alone). Like `honcho start`, with output
lines prefixed by the process name and every process stopped when one ends, but each process runs in its own session and Ctrl-C (or
SIGTERM) is passed as SIGTERM to each process's main pid only: django-q2's cluster stops cleanly when only
its main process is signalled (signalling its whole group, as honcho does, leaves it hanging until
SIGKILL). A process still running STOP_WAIT seconds later is killed. Exit status 0 after a requested stop.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STOP_WAIT = 30


def procfile(path=ROOT / "Procfile"):
    """{name: command} in file order."""
    entries = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            entries[name.strip()] = command.strip()
    return entries


def _pump(name, width, stream):
    for line in iter(stream.readline, b""):
        sys.stdout.write(f"{time.strftime('%H:%M:%S')} {name:<{width}} | {line.decode(errors='replace')}")
        sys.stdout.flush()


def default_processes():
    """The Procfile's processes for this configuration: the sandbox only in sandbox mode."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings

    names = [name for name in procfile() if name != "sandbox" or settings.SANDBOX]
    print("")
    web = "http://" + os.environ.get("WEB_BIND", "127.0.0.1:8000")
    print(f"  ml-connector: admin at {web}/admin/   health at {web}/healthz/")
    print("  First time? Create an operator account:  .venv/bin/python manage.py createsuperuser")
    if settings.SANDBOX:
        print(
            f"  Sandbox mode (no vendor credentials): FreshBooks sandbox at {settings.FRESHBOOKS_API_URL}/,"
        )
        print(
            f"  Jira sandbox at {settings.ATLASSIAN_API_URL}/; connect the tenant Sandbox Bakery in the admin."
        )
    print(f"  Ctrl-C stops {', '.join(names)}.")
    print("", flush=True)
    return names


def main(names):
    entries = procfile()
    names = names or default_processes()
    unknown = [n for n in names if n not in entries]
    if unknown:
        sys.exit(f"No such process in the Procfile: {', '.join(unknown)}")
    width = max(len(n) for n in names)
    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    processes = {}
    for name in names:
        command = entries[name]  # ${WEB_BIND:-…} needs a shell: run it through sh
        processes[name] = subprocess.Popen(  # noqa: S603 - the commands are this repository's Procfile
            ["/bin/sh", "-c", "exec " + command if not command.startswith("exec ") else command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        threading.Thread(target=_pump, args=(name, width, processes[name].stdout), daemon=True).start()
        print(f"{time.strftime('%H:%M:%S')} {'system':<{width}} | {name} started (pid {processes[name].pid})")
    ended = None
    while not stopping.is_set() and ended is None:
        ended = next((n for n, p in processes.items() if p.poll() is not None), None)
        stopping.wait(0.2)
    reason = "stop requested" if ended is None else f"{ended} ended (status {processes[ended].returncode})"
    print(f"{time.strftime('%H:%M:%S')} {'system':<{width}} | {reason}: stopping {', '.join(names)}")
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT
    for name, process in processes.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop within {STOP_WAIT} s: killing it")
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    sys.stdout.flush()
    return 0 if ended is None else (processes[ended].returncode or 1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
