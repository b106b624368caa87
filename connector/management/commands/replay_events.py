"""manage.py replay_events: run stored FreshBooks events through processing again (safe: the ledger)."""

from django.core.management.base import BaseCommand, CommandError

from audit.models import Event
from connector.replay import replay
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Replay stored FreshBooks events: queue them for the worker again (or process them here with --sync). "
        "Select by --tenant, --status and/or --id; at least one is required. A replay never creates a second "
        "Jira issue or worklog (every write goes through the idempotency ledger) and keeps earlier attempts."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", metavar="SLUG", help="Only this tenant's events.")
        parser.add_argument(
            "--status",
            choices=[choice for choice, _ in Event.Status.choices],
            help="Only events in this status.",
        )
        parser.add_argument("--id", type=int, nargs="+", dest="ids", metavar="N", help="These event ids.")
        parser.add_argument("--sync", action="store_true", help="Process here and now instead of queueing.")

    def handle(self, *args, tenant=None, status=None, ids=None, sync=False, **options):
        if not (tenant or status or ids):
            raise CommandError(
                "Select events with --tenant, --status and/or --id (refusing to replay everything)."
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
        events = list(events)
        if not events:
            self.stdout.write("No events match.")
            return
        result = replay(events, actor="command", sync=sync)
        verb = "Processed" if sync else "Queued"
        for event in result.queued:
            after = f" → {event.status}{f' {event.jira_key}' if event.jira_key else ''}" if sync else ""
            self.stdout.write(f"{verb} #{event.pk} {event.name} {event.object_id}{after}")
        for event, reason in result.refused:
            self.stdout.write(f"Refused #{event.pk} {event.name} {event.object_id}: {reason}")
        self.stdout.write(
            self.style.SUCCESS(f"{verb} {len(result.queued)} event(s), refused {len(result.refused)}.")
        )
