"""manage.py rollback_event: delete in Jira the issues and worklogs that stored events created."""

import sys

from django.core.management.base import BaseCommand, CommandError

from audit.models import Event
from connector.rollback import RollbackFailed, RollbackRefused, rollback


class Command(BaseCommand):
    help = (
        "Roll back events: delete in Jira the issues and worklogs their processing created (already gone in "
        "Jira counts as removed) and mark the events and their ledger links rolled back, so no replay "
        "re-creates them. Asks for confirmation on a terminal; pass --yes when running unattended. "
        "An event that created nothing still linked is refused; a Jira failure leaves the event as it was."
    )

    def add_arguments(self, parser):
        parser.add_argument("ids", type=int, nargs="+", metavar="ID", help="Event ids.")
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")

    def handle(self, *args, ids, yes=False, **options):
        found = {event.pk: event for event in Event.objects.filter(pk__in=ids)}
        missing = [str(pk) for pk in dict.fromkeys(ids) if pk not in found]
        if missing:
            raise CommandError(f"No event with id {', '.join(missing)}.")
        events = [found[pk] for pk in dict.fromkeys(ids)]
        if not yes:
            if not sys.stdin.isatty():
                raise CommandError("Rollback deletes Jira issues and worklogs: pass --yes to confirm.")
            listed = ", ".join(f"#{event.pk}" for event in events)
            answer = input(f"Delete in Jira what event(s) {listed} created? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                self.stdout.write("Cancelled: nothing was changed.")
                return
        failed = 0
        for event in events:
            label = f"#{event.pk} {event.name} {event.object_id}"
            try:
                removed = rollback(event, actor="command")
            except RollbackRefused as exc:
                self.stdout.write(f"Refused {label}: {exc}")
            except RollbackFailed as exc:
                failed += 1
                self.stdout.write(self.style.ERROR(f"Failed {label}: {exc}"))
            else:
                self.stdout.write(self.style.SUCCESS(f"Rolled back {label}: deleted {', '.join(removed)}"))
        if failed:
            raise CommandError(f"{failed} event(s) could not be rolled back (see above).")
