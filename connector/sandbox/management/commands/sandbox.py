"""Run the built-in FreshBooks and Jira sandbox on loopback until stopped (Ctrl-C or SIGTERM)."""

import signal
import threading
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from connector.sandbox.runtime import Sandbox
from connector.sandbox.tenant import setup_tenant


def _port(url):
    return urlsplit(url).port or 0


def _stop_on_signals(stop):
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())


class Command(BaseCommand):
    help = (
        "Run the vendor sandbox (FreshBooks on FRESHBOOKS_API_URL, Atlassian sign-in on ATLASSIAN_AUTH_URL, "
        "Jira on ATLASSIAN_API_URL, all on 127.0.0.1) and create the sandbox tenant. Only in sandbox mode "
        "(SANDBOX=1, or no vendor credentials set); otherwise it idles and runs nothing. `--check` only tells "
        "whether sandbox mode is on (exit 0) or off (exit 1)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="Exit 0 in sandbox mode, 1 otherwise.")

    def handle(self, *args, check=False, **options):
        if check:
            raise SystemExit(0 if settings.SANDBOX else 1)
        stop = threading.Event()
        if not settings.SANDBOX:
            _stop_on_signals(stop)
            # Under a process manager that stops every process when one exits: idle, run nothing.
            self.stdout.write("Sandbox mode is off (vendor credentials are set): the sandbox does not run.")
            self.stdout.flush()
            stop.wait()
            return
        tenant, created = setup_tenant()
        ports = [
            _port(settings.FRESHBOOKS_API_URL),
            _port(settings.ATLASSIAN_AUTH_URL),
            _port(settings.ATLASSIAN_API_URL),
        ]
        try:
            sandbox = Sandbox(*ports, state_path=settings.SANDBOX_STATE_FILE)
        except OSError as exc:  # a port in use: another sandbox (or program) listens there
            raise CommandError(
                f"The sandbox cannot listen on 127.0.0.1 ports {', '.join(map(str, ports))}: {exc.strerror}. "
                "Is another `make run` running? Stop it, or set FRESHBOOKS_API_URL, ATLASSIAN_AUTH_URL and "
                "ATLASSIAN_API_URL to other http://127.0.0.1:PORT addresses."
            ) from exc
        _stop_on_signals(stop)
        self.stdout.write(
            f"Sandbox running: FreshBooks {sandbox.fb.url}/  Jira {sandbox.jira.url}/  (tenant {tenant.name}"
            f"{', created' if created else ''}; state in {settings.SANDBOX_STATE_FILE})"
        )
        self.stdout.flush()
        stop.wait()
        sandbox.close()
        self.stdout.write("Sandbox stopped; state saved.")
