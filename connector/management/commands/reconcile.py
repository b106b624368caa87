"""manage.py reconcile: list FreshBooks records updated since the watermark and process those never seen."""

from django.core.management.base import BaseCommand, CommandError

from config.arguments import moment
from connector.kinds import KINDS
from connector.reconcile import ReconcileBusy, reconcile
from tenants.models import Tenant


def parse_since(text, option="--since"):
    """An ISO 8601 date or datetime (naive means UTC) from 1970 on → aware datetime; CommandError otherwise."""
    return moment(text, option)


def parse_kinds(text):
    kinds = [kind.strip() for kind in text.split(",") if kind.strip()]
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown or not kinds:
        raise CommandError(f"--kinds takes a comma-separated list of: {', '.join(KINDS)}.")
    return kinds


class Command(BaseCommand):
    help = (
        "Reconcile: list the FreshBooks records of every kind the tenant maps that were updated since its "
        "watermark (minus an overlap for FreshBooks' US/Eastern clock) and create an event (source "
        "'reconcile') for each one no ledger link and no earlier event knows, processed like a delivery "
        "(Jira is written once, whichever of webhook and reconcile comes first). --since on a new tenant is "
        "the backfill of past records. --dry-run writes nothing, in the database or in Jira, and prints what "
        "would be created with each rendered summary. The watermark moves only after a clean pass; exit "
        "code 1 when a pass fails."
    )

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--tenant", metavar="SLUG", help="Reconcile this tenant.")
        which.add_argument("--all", action="store_true", help="Reconcile every active tenant.")
        parser.add_argument(
            "--since", metavar="ISO", help="List records updated since this date or datetime (UTC if naive)."
        )
        parser.add_argument("--kinds", metavar="KIND,…", help=f"Only these kinds ({', '.join(KINDS)}).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Print what would be created; write nothing."
        )
        parser.add_argument(
            "--sync", action="store_true", help="Process new events here instead of queueing."
        )

    def handle(
        self, *args, tenant=None, all=False, since=None, kinds=None, dry_run=False, sync=False, **opts
    ):
        since = parse_since(since) if since else None
        kinds = parse_kinds(kinds) if kinds else None
        if all:
            tenants = list(Tenant.objects.filter(active=True, freshbooks_accounts__isnull=False).distinct())
        else:
            found = Tenant.objects.filter(slug=tenant).first()
            if found is None:
                raise CommandError(f"No tenant with slug {tenant!r}.")
            tenants = [found]
        failed = []
        for one in tenants:
            try:
                result = reconcile(
                    one,
                    since=since,
                    kinds=kinds,
                    dry_run=dry_run,
                    sync=sync,
                    actor="command",
                    progress=self.stdout.write,
                )
            except ReconcileBusy as exc:
                failed.append(one.slug)
                self.stdout.write(self.style.ERROR(f"{one.slug}: not run: {exc}"))
                continue
            for item in result.created:
                if dry_run:
                    name, object_id, what = item
                    self.stdout.write(f"Would create {name} {object_id}: {what}")
                else:
                    after = f" → {item.status}{f' {item.jira_key}' if item.jira_key else ''}" if sync else ""
                    self.stdout.write(f"Created #{item.pk} {item.name} {item.object_id}{after}")
            style = self.style.SUCCESS if result.ok else self.style.ERROR
            self.stdout.write(style(f"{one.slug}: {result.summary()}"))
            if not result.ok:
                failed.append(one.slug)
        if failed:
            raise CommandError(
                f"Reconcile failed for {', '.join(failed)}; the watermark was left where it was."
            )
