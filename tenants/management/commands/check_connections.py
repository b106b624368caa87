"""Check every tenant's (or one tenant's) FreshBooks and Jira connections; exit 1 when any check fails."""

from django.core.management.base import BaseCommand, CommandError

from tenants.checks import check_tenant, format_table
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Test the connections of all active tenants (or --tenant SLUG): FreshBooks identity and one cheap "
        "read; Jira myself, each mapped project exists and its mapped issue types are creatable. Prints a "
        "table (tenant, side, status, detail) and exits with status 1 when anything fails. Read-only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", metavar="SLUG", help="Check only this tenant (active or not).")

    def handle(self, *args, **options):
        if options["tenant"]:
            tenants = list(Tenant.objects.filter(slug=options["tenant"]))
            if not tenants:
                raise CommandError(f"No tenant with slug {options['tenant']!r}.")
        else:
            tenants = list(Tenant.objects.filter(active=True))
            if not tenants:
                self.stdout.write("No active tenants.")
                return
        results = [result for tenant in tenants for result in check_tenant(tenant)]
        self.stdout.write(format_table(results))
        failed = [r for r in results if not r.ok]
        if failed:
            self.stderr.write(self.style.ERROR(f"{len(failed)} check(s) failed."))
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS(f"All {len(results)} checks passed."))
