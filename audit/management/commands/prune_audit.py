from django.core.management.base import BaseCommand

from audit.retention import prune
from config.arguments import BATCH_MAX, DAYS_MAX, batch_size, days


class Command(BaseCommand):
    help = (
        "Remove the payload, fetched record and attempt request/response bodies of finished events (succeeded, "
        "skipped, duplicate, failed, rolled back) older than DAYS. Event and attempt metadata (names, ids, "
        "statuses, Jira keys, times, HTTP statuses) and the ledger links stay, so duplicate deliveries and "
        "replays still write nothing twice. --dry-run only counts. Set AUDIT_RETENTION_DAYS to run it daily."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            metavar="DAYS",
            required=True,
            type=days,
            help=f"Prune events that finished more than DAYS days ago (1 to {DAYS_MAX}).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be pruned; change nothing."
        )
        parser.add_argument(
            "--batch-size",
            type=batch_size,
            default=500,
            help=f"Events per transaction (1 to {BATCH_MAX}, default 500).",
        )

    def handle(self, *args, older_than, dry_run, batch_size, **options):
        def progress(done):
            self.stdout.write(f"  … {done.events} event(s), {done.attempts} attempt(s) pruned so far")

        result = prune(older_than, dry_run=dry_run, batch_size=batch_size, progress=progress)
        verb = "Would prune" if dry_run else "Pruned"
        self.stdout.write(
            f"{verb} {result.events} event(s) and the bodies of {result.attempts} attempt(s) "
            f"finished before {result.cutoff:%Y-%m-%d %H:%M %Z}."
        )
