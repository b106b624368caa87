"""manage.py replay_events: run stored FreshBooks events through processing again (safe: the ledger)."""

import getpass

from django.core.management.base import BaseCommand, CommandError

from audit.models import Event
from config.arguments import event_id, moment
from connector.replay import replay
from tenants.models import Tenant


def operator():
    """Who runs the command, as recorded on the events and attempts: "command:<OS user>"."""
    try:
        return f"command:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in a bare container
        return "command"


class Command(BaseCommand):
    help = (
        "Replay stored FreshBooks events: queue them for the worker again (or process them here with --sync). "
        "Select by --tenant, --status, --event, --since/--until (received time) and/or --id; at least one is "
        "required. --dry-run lists what would be replayed and what would be refused, changing nothing. A "
        "replay never creates a second Jira issue or worklog (every write goes through the idempotency "
        "ledger), keeps earlier attempts and records who asked."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", metavar="SLUG", help="Only this tenant's events.")
        parser.add_argument(
            "--status",
            choices=[choice for choice, _ in Event.Status.choices],
            help="Only events in this status.",
        )
        parser.add_argument("--event", metavar="NAME", help="Only events of this name, e.g. invoice.create.")
        parser.add_argument(
            "--reason",
            metavar="TEXT",
            help="Only failed events of this reason, as the Failed events list shows it "
            "(e.g. 'Jira PUT /rest/api/3/issue/<issue> → 404: Issue does not exist').",
        )
        parser.add_argument("--since", metavar="ISO", help="Only events received at or after this time.")
        parser.add_argument("--until", metavar="ISO", help="Only events received before this time.")
        parser.add_argument(
            "--id", type=event_id, nargs="+", dest="ids", metavar="N", help="These event ids."
        )
        parser.add_argument("--sync", action="store_true", help="Process here and now instead of queueing.")
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be replayed; change nothing."
        )

    def handle(
        self,
        *args,
        tenant=None,
        status=None,
        event=None,
        since=None,
        until=None,
        ids=None,
        sync=False,
        dry_run=False,
        reason=None,
        **options,
    ):
        if not (tenant or status or ids or event or since or until or reason):
            raise CommandError(
                "Select events with --tenant, --status, --event, --reason, --since/--until and/or --id "
                "(refusing to replay everything)."
            )
        events = Event.objects.exclude(source=Event.Source.JIRA).order_by("received_at", "id")
        if tenant:
            found = Tenant.objects.filter(slug=tenant).first()
            if found is None:
                raise CommandError(f"No tenant with slug {tenant!r}.")
            events = events.filter(tenant=found)
        if ids:
            missing = sorted(set(ids) - set(Event.objects.filter(pk__in=ids).values_list("pk", flat=True)))
            if missing:
                raise CommandError(f"No event with id {', '.join(map(str, missing))}.")
            events = events.filter(pk__in=ids)
        if status:
            events = events.filter(status=status)
        if event:
            events = events.filter(name=event)
        if reason is not None:  # the stored, indexed reason of failed events (audit.reasons)
            events = events.filter(status=Event.Status.FAILED, failure_reason=reason.strip())
        since, until = (moment(since) if since else None), (moment(until, "--until") if until else None)
        if since and until and since >= until:
            raise CommandError("--since must be before --until.")
        if since:
            events = events.filter(received_at__gte=since)
        if until:
            events = events.filter(received_at__lt=until)
        events = list(events.only("pk"))
        if not events:
            self.stdout.write("No events match.")
            return
        result = replay(
            events,
            actor=operator(),
            sync=sync,
            dry_run=dry_run,
            progress=lambda done, total: self.stdout.write(f"… {done}/{total} event(s)"),
        )
        verb = "Would replay" if dry_run else "Processed" if sync else "Queued"
        for one in result.queued:
            after = (
                f" → {one.status}{f' {one.jira_key}' if one.jira_key else ''}" if sync and not dry_run else ""
            )
            self.stdout.write(f"{verb} #{one.pk} {one.name} {one.object_id}{after}")
        for one, reason in result.refused:
            self.stdout.write(
                f"{'Would refuse' if dry_run else 'Refused'} #{one.pk} {one.name} {one.object_id}: {reason}"
            )
        self.stdout.write(
            self.style.SUCCESS(f"{verb} {len(result.queued)} event(s), refused {len(result.refused)}.")
        )
