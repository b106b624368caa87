"""manage.py rollback_event: delete in Jira the issues and worklogs that stored events created."""

import sys

from django.core.management.base import BaseCommand, CommandError

from audit.models import Event
from config.arguments import event_id
from connector.management.commands.replay_events import operator
from connector.rollback import RollbackConflict, RollbackFailed, RollbackRefused, rollback


class Command(BaseCommand):
    help = (
        "Roll back events: delete in Jira the issues and worklogs their processing created (already gone in "
        "Jira counts as removed) and mark the events and their ledger links rolled back, so no replay "
        "re-creates them; put back the issue fields and worklogs their processing changed, and re-create the "
        "worklogs it deleted. When Jira was changed since the connector's write, the differences are shown "
        "and nothing is overwritten unless you confirm (on a terminal) or pass --overwrite. Asks for "
        "confirmation on a terminal; pass --yes when running unattended. An event with nothing to undo is "
        "refused; a Jira failure leaves the event as it was."
    )

    def add_arguments(self, parser):
        parser.add_argument("ids", type=event_id, nargs="+", metavar="ID", help="Event ids.")
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")
        parser.add_argument(
            "--overwrite",
            action="store_true",
            help="Also overwrite changes made in Jira since (check first).",
        )

    def handle(self, *args, ids, yes=False, overwrite=False, **options):
        found = {event.pk: event for event in Event.objects.filter(pk__in=ids)}
        missing = [str(pk) for pk in dict.fromkeys(ids) if pk not in found]
        if missing:
            raise CommandError(f"No event with id {', '.join(missing)}.")
        events = [found[pk] for pk in dict.fromkeys(ids)]
        if not yes:
            if not sys.stdin.isatty():
                raise CommandError("Rollback deletes Jira issues and worklogs: pass --yes to confirm.")
            listed = ", ".join(f"#{event.pk}" for event in events)
            answer = input(f"Undo in Jira what event(s) {listed} did? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                self.stdout.write("Cancelled: nothing was changed.")
                return
        failed = 0
        for event in events:
            label = f"#{event.pk} {event.name} {event.object_id}"
            try:
                done = self.rollback_one(event, overwrite)
            except RollbackConflict as exc:
                failed += 1
                self.stdout.write(self.style.ERROR(f"Not rolled back {label}: {exc}"))
            except RollbackRefused as exc:
                self.stdout.write(f"Refused {label}: {exc}")
            except RollbackFailed as exc:
                failed += 1
                self.stdout.write(self.style.ERROR(f"Failed {label}: {exc}"))
            else:
                self.stdout.write(self.style.SUCCESS(f"Rolled back {label}: {', '.join(done)}"))
        if failed:
            raise CommandError(f"{failed} event(s) could not be rolled back (see above).")

    def rollback_one(self, event, overwrite):
        """Roll back; on a conflict show the differences and, on a terminal, ask before overwriting."""
        try:
            return rollback(event, actor=operator(), overwrite=overwrite)
        except RollbackConflict as exc:
            self.stdout.write(f"#{event.pk}: changed in Jira since the connector's write:")
            for what, name, ours, now in exc.differences:
                self.stdout.write(f"  {what} {name}: the connector wrote {ours!r}, Jira now has {now!r}")
            if not sys.stdin.isatty():
                raise RollbackConflict(exc.differences) from None
            answer = input("Overwrite these changes with what was there before the event? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                raise
            return rollback(event, actor=operator(), overwrite=True)
