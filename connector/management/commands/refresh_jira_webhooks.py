from django.core.management.base import BaseCommand, CommandError

from connector.jira import registration
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Keep Jira webhooks alive. OAuth sites: dynamic webhooks expiring within 7 days are refreshed, then "
        "listed; missing ones are registered again. API-token sites: the admin webhook is checked and "
        "registered again when gone. --register (re-)registers every site now (idempotent: existing "
        "matching webhooks are reused). Failures are shown on the Jira site in the admin; the command "
        "exits non-zero when any site failed. Runs daily as the django-q2 schedule 'refresh-jira-webhooks'."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", metavar="SLUG", help="Only this tenant's Jira site.")
        parser.add_argument(
            "--register", action="store_true", help="Register (or re-register) the webhooks now."
        )
        parser.add_argument(
            "--force", action="store_true", help="Refresh dynamic webhooks even when not due yet."
        )

    def handle(self, *args, tenant=None, register=False, force=False, **options):
        if tenant and not Tenant.objects.filter(slug=tenant).exists():
            raise CommandError(f"No tenant with slug {tenant!r}.")
        sites = list(registration.eligible_sites(tenant))
        if not sites:
            self.stdout.write("No connected Jira site.")
            return
        failed = []
        for site in sites:
            if register:
                ok = registration.register(site, actor="command")
            else:
                ok = registration.refresh(site, actor="command", force=force)
            if ok:
                until = site.webhook_expires_at.isoformat() if site.webhook_expires_at else "no expiry"
                self.stdout.write(f"{site.tenant.slug}: webhooks {site.webhook_ids} OK ({until})")
            else:
                failed.append(site.tenant.slug)
                self.stderr.write(f"{site.tenant.slug}: {site.webhook_error}")
        if failed:
            raise CommandError(f"Jira webhooks failed for: {', '.join(failed)}")
