from django.core.management.base import BaseCommand, CommandError

from connector.errors import VendorError
from connector.freshbooks import registration
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Register the FreshBooks callbacks (webhooks) a tenant needs at PUBLIC_BASE_URL/webhooks/freshbooks/: "
        "one per event of its enabled issue mappings, plus time_entry.create/update/delete when it has "
        "enabled worklog rules. Idempotent: existing callbacks are listed first, missing ones created, "
        "duplicates and callbacks for events no longer needed deleted. FreshBooks then sends a "
        "callback.verify delivery that the connector confirms by itself. --resend-verification asks "
        "FreshBooks to send that delivery again for callbacks that are still unverified."
    )

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--tenant", metavar="SLUG", help="The tenant's slug.")
        which.add_argument("--all", action="store_true", help="Every active tenant.")
        parser.add_argument(
            "--resend-verification",
            action="store_true",
            help="Also ask FreshBooks to resend the verification of callbacks not verified yet.",
        )

    def handle(self, *args, tenant=None, all=False, resend_verification=False, **options):
        if tenant:
            found = Tenant.objects.filter(slug=tenant).first()
            if found is None:
                raise CommandError(f"No tenant with slug {tenant!r}.")
            if not found.active:
                raise CommandError(f"Tenant {tenant!r} is inactive: activate it first.")
            tenants = [found]
        else:
            tenants = list(Tenant.objects.filter(active=True))
        failures = []
        for each in tenants:
            accounts = list(each.freshbooks_accounts.all())
            if not accounts:
                message = f"{each.slug}: no FreshBooks account connected."
                if tenant:
                    raise CommandError(message)
                self.stdout.write(message)
                continue
            for account in accounts:
                label = f"{each.slug} {account.account_id}"
                try:
                    result = registration.register(account, actor="command")
                    self.stdout.write(f"{label}: {result.summary()}")
                    if resend_verification:
                        for hook in account.webhooks.filter(verified=False).order_by("event"):
                            registration.resend_verification(hook, actor="command")
                            self.stdout.write(f"{label}: asked FreshBooks to resend verification of {hook}")
                except VendorError as exc:
                    failures.append(f"{label}: {exc}")
                    self.stderr.write(f"{label}: {exc}")
        if failures:
            raise CommandError(f"{len(failures)} account(s) failed; first: {failures[0]}")
