"""manage.py pause_tenant: pause or resume a tenant's sync to Jira (tenants.pausing)."""

from django.core.management.base import BaseCommand, CommandError

from connector.management.commands.replay_events import operator
from tenants import pausing
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Pause a tenant's sync to Jira, or resume it (--resume), or show its state (--status). While paused, "
        "the tenant's FreshBooks deliveries are still received, verified and stored, and nothing is sent to "
        'Jira: the worker holds them (status waiting, "tenant paused"). On resume the held events are queued '
        "in the order they were received. Pausing a paused tenant or resuming a running one changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant", metavar="SLUG", help="The tenant's slug.")
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--resume", action="store_true", help="Resume the sync: queue the held events.")
        action.add_argument("--status", action="store_true", help="Only show whether it is paused.")
        parser.add_argument(
            "--note", default="", help="Why it is paused (kept on the tenant, shown in the admin)."
        )

    def handle(self, *args, tenant, resume=False, status=False, note="", **options):
        found = Tenant.objects.filter(slug=tenant).first()
        if found is None:
            raise CommandError(f"No tenant with slug {tenant!r}.")
        if len(note) > pausing.MAX_NOTE:
            raise CommandError(f"--note is at most {pausing.MAX_NOTE} characters.")
        if note and (resume or status):
            raise CommandError("--note goes with a pause only.")
        if status:
            self.stdout.write(f"{found.slug}: {pausing.status(found)}")
            return
        if resume:
            queued = pausing.resume(found, actor=operator())
            if queued is None:
                self.stdout.write(f"{found.slug}: not paused; nothing to resume.")
            else:
                self.stdout.write(
                    self.style.SUCCESS(
                        f"{found.slug}: resumed; {queued} held event(s) queued in the order received."
                    )
                )
            return
        if pausing.pause(found, actor=operator(), note=note):
            self.stdout.write(
                self.style.SUCCESS(
                    f"{found.slug}: paused. Deliveries are still stored; nothing is sent to Jira until "
                    f"`manage.py pause_tenant {found.slug} --resume`."
                )
            )
        else:
            self.stdout.write(f"{found.slug}: already {pausing.status(found)}.")
