import argparse

from django.core.management.base import BaseCommand, CommandError

from audit.retention import prune


def days(value):
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"a whole number of days, at least 1, is needed (got {value!r})")
    return number


class Command(BaseCommand):
    help = (
        "Remove the payload, fetched record and attempt request/response bodies of finished events (succeeded, "
        "skipped, duplicate, failed, rolled back) older than DAYS. Event and attempt metadata (names, ids, "
        "statuses, Jira keys, times, HTTP statuses) and the ledger links stay, so duplicate deliveries and "
        "replays still write nothing twice. --dry-run only counts. Set AUDIT_RETENTION_DAYS to run it daily."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than", metavar="DAYS", required=True, type=days,
            help="Prune events that finished more than DAYS days ago (at least 1).",
        )  # fmt: skip
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be pruned; change nothing."
        )
        parser.add_argument(
            "--batch-size", type=int, default=500, help="Events per transaction (default 500)."
        )

    def handle(self, *args, older_than, dry_run, batch_size, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")

        def progress(done):
            self.stdout.write(f"  … {done.events} event(s), {done.attempts} attempt(s) pruned so far")

        result = prune(older_than, dry_run=dry_run, batch_size=batch_size, progress=progress)
        verb = "Would prune" if dry_run else "Pruned"
        self.stdout.write(
            f"{verb} {result.events} event(s) and the bodies of {result.attempts} attempt(s) "
            f"finished before {result.cutoff:%Y-%m-%d %H:%M %Z}."
        )
