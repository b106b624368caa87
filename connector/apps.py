from django.apps import AppConfig
from django.db.models.signals import post_migrate

JIRA_WEBHOOK_SCHEDULE = "refresh-jira-webhooks"
STALE_EVENTS_SCHEDULE = "requeue-stale-events"
RECONCILE_SCHEDULE = "reconcile-tenants"
WAITING_SCHEDULE = "resume-waiting-events"
BULK_SCHEDULE = "feed-bulk-work"


def create_schedules(using="default", **kwargs):
    """Daily refresh of Jira webhooks (dynamic ones expire after 30 days), a 10-minute sweep of events a
    stopped worker left processing, and a 5-minute check that queues each tenant's reconcile when its own
    interval has elapsed, a 1-minute sweep that queues waiting events whose time has come, and a 1-minute feed
    of the bulk lane (connector.bulk). Idempotent: runs after every migrate."""
    from django_q.models import Schedule  # here, not at the top: apps.py loads before the app registry

    func = "connector.jira.registration.refresh_all"
    Schedule.objects.using(using).update_or_create(
        name=JIRA_WEBHOOK_SCHEDULE,
        defaults={"func": func},  # an operator's changes to the timing survive later migrations
        create_defaults={"func": func, "schedule_type": Schedule.DAILY, "repeats": -1},
    )
    func = "connector.tasks.requeue_stale"
    Schedule.objects.using(using).update_or_create(
        name=STALE_EVENTS_SCHEDULE,
        defaults={"func": func},
        create_defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": 10, "repeats": -1},
    )
    func = "connector.reconcile.reconcile_due"
    Schedule.objects.using(using).update_or_create(
        name=RECONCILE_SCHEDULE,
        defaults={"func": func},
        create_defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": 5, "repeats": -1},
    )
    func = "connector.bulk.feed"
    Schedule.objects.using(using).update_or_create(
        name=BULK_SCHEDULE,
        defaults={"func": func},
        create_defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1},
    )
    func = "connector.tasks.resume_waiting"
    Schedule.objects.using(using).update_or_create(
        name=WAITING_SCHEDULE,
        defaults={"func": func},
        create_defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1},
    )


class ConnectorConfig(AppConfig):
    name = "connector"
    verbose_name = "Sync: mappings, rules and links"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        post_migrate.connect(create_schedules, sender=self, dispatch_uid="connector.create_schedules")
