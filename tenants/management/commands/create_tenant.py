"""Create a tenant with its token Jira site (API token, or a Data Center personal access token) and default
mappings, then print the next steps."""

import argparse
import os
import re
import sys
from datetime import date
from getpass import getpass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.urls import reverse
from django.utils.text import slugify

from connector.defaults import create_default_mappings, create_default_worklog_rule
from connector.jira.keys import is_project_key
from tenants.checks import CheckError, check_create_screen, check_jira_project, probe_jira_site
from tenants.models import ConnectionStatus, JiraSite, Tenant
from tenants.vendor_urls import check_vendor_url

AUTH_METHODS = {"api-token": JiraSite.AuthMethod.BASIC, "pat": JiraSite.AuthMethod.PAT}


def _date(text):
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


class Command(BaseCommand):
    help = (
        "Create a tenant: its Jira site (--jira-auth api-token: email or user name + API token; --jira-auth pat: "
        "a Data Center personal access token; the token is read from the JIRA_API_TOKEN environment variable or "
        "prompted for, never passed as an argument), the default mappings to "
        '--jira-project and the worklog rule "Jira issue key in the entry\'s note" (--no-worklog-rule: none). The site is checked first (serverInfo decides Cloud or Server/Data Center; '
        "myself proves the credentials; the project must exist) unless --skip-check is given. Prints the URL "
        "at which to connect the tenant's FreshBooks business."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="Display name, e.g. 'Acme Corp'.")
        parser.add_argument("--slug", required=True, help="Short unique id used in URLs, e.g. 'acme'.")
        parser.add_argument(
            "--jira-url", required=True, help="Jira site URL, e.g. https://acme.atlassian.net"
        )
        parser.add_argument(
            "--jira-auth",
            choices=sorted(AUTH_METHODS),
            default="api-token",
            help="api-token (default): Basic with --jira-email and an API token (Cloud) or password (Server); "
            "pat: a Data Center personal access token (Bearer), no --jira-email.",
        )
        parser.add_argument(
            "--jira-email",
            default="",
            help="Email (Cloud) or user name (Server / Data Center) of the Jira user.",
        )
        parser.add_argument(
            "--expires-on",
            type=_date,
            help="When the token expires (YYYY-MM-DD): operators are warned 30 and 7 days before.",
        )
        parser.add_argument(
            "--jira-project", required=True, help="Project key the default mappings write to."
        )
        parser.add_argument(
            "--no-worklog-rule",
            action="store_true",
            help="Do not create the default worklog rule (time entries whose note names a Jira issue key, "
            "e.g. FIN-7, become worklogs on that issue).",
        )
        parser.add_argument(
            "--skip-check",
            action="store_true",
            help="Do not contact Jira now (the site is saved as Cloud and 'not connected' until checked).",
        )

    def handle(self, *args, **options):
        name, slug = options["name"].strip(), options["slug"].strip()
        jira_url = options["jira_url"].strip().rstrip("/")
        email = options["jira_email"].strip()
        auth_method = AUTH_METHODS[options["jira_auth"]]
        if auth_method == JiraSite.AuthMethod.PAT:
            email = ""
        elif not email:
            raise CommandError("--jira-email is required with --jira-auth api-token (email or user name).")
        project = options["jira_project"].strip().upper()
        if not name:
            raise CommandError("--name must not be empty.")
        if slug != slugify(slug) or not slug:
            raise CommandError(
                f"--slug {slug!r} must be lower-case letters, digits and hyphens, e.g. 'acme-corp'."
            )
        if not re.match(r"^https?://[^/\s]+", jira_url):
            raise CommandError(
                f"--jira-url {jira_url!r} must be an http(s) URL, e.g. https://acme.atlassian.net"
            )
        try:
            check_vendor_url(jira_url)
        except ValidationError as exc:
            raise CommandError(f"--jira-url {jira_url!r}: {' '.join(exc.messages)}") from exc
        if not is_project_key(project):
            raise CommandError(f"--jira-project {project!r} is not a Jira project key (e.g. FIN).")
        if Tenant.objects.filter(slug=slug).exists():
            raise CommandError(f"A tenant with slug {slug!r} already exists.")
        self.validate(Tenant(name=name, slug=slug), JiraSite(base_url=jira_url, email=email))
        token = self.api_token()

        deployment, status = JiraSite.Deployment.CLOUD, ConnectionStatus.DISCONNECTED
        if not options["skip_check"]:
            try:
                deployment, user = probe_jira_site(jira_url, email, token, auth_method)
                probe = JiraSite(
                    base_url=jira_url,
                    email=email,
                    api_token=token,
                    deployment=deployment,
                    auth_method=auth_method,
                )
                check_jira_project(probe, project, {"Task"})
                # The default mappings send a summary, a description and labels (the connector's own always).
                check_create_screen(probe, project, "Task", {"description_template": "x", "labels": ["x"]})
            except CheckError as exc:
                raise CommandError(f"{exc} (use --skip-check to create the tenant anyway)") from exc
            status = ConnectionStatus.CONNECTED
            self.stdout.write(
                f"Jira {jira_url}: {JiraSite.Deployment(deployment).label}, signed in as {user}."
            )

        with transaction.atomic():
            tenant = Tenant.objects.create(name=name, slug=slug)
            JiraSite.objects.create(
                tenant=tenant,
                base_url=jira_url,
                email=email,
                api_token=token,
                deployment=deployment,
                auth_method=auth_method,
                status=status,
                credentials_expire_on=options["expires_on"],
            )
            mappings = create_default_mappings(tenant, project)
            rule = None if options["no_worklog_rule"] else create_default_worklog_rule(tenant)

        connect_url = settings.PUBLIC_BASE_URL + reverse("freshbooks-oauth-connect", args=[slug])
        self.stdout.write(
            self.style.SUCCESS(f"Created tenant {name} ({slug}) with {len(mappings)} mappings to {project}.")
        )
        if rule:
            self.stdout.write(
                "Time entries whose note names a Jira issue key (e.g. FIN-7) become worklogs on it."
            )
        self.stdout.write(
            "Next steps:\n"
            f"  1. Connect FreshBooks (signed in to the admin as staff): {connect_url}\n"
            f"  2. Register the FreshBooks webhooks: manage.py register_webhooks --tenant {slug}\n"
            f"  3. Check both sides: manage.py check_connections --tenant {slug}"
        )

    def validate(self, tenant, site):
        """The models' own checks (lengths, email, URL), as one line instead of a database error."""
        try:
            tenant.full_clean(validate_unique=False)
            site.full_clean(exclude=["tenant"], validate_unique=False)
        except ValidationError as exc:
            options = {"name": "--name", "slug": "--slug", "base_url": "--jira-url", "email": "--jira-email"}
            raise CommandError(
                "; ".join(f"{options.get(f, f)}: {' '.join(m)}" for f, m in exc.message_dict.items())
            ) from exc

    def api_token(self):
        token = os.environ.get("JIRA_API_TOKEN", "").strip()
        if token:
            return token
        if not sys.stdin.isatty():
            raise CommandError("Set JIRA_API_TOKEN (no terminal to prompt for the Jira API token).")
        token = getpass("Jira API token: ").strip()
        if not token:
            raise CommandError("A Jira API token is required.")
        return token
