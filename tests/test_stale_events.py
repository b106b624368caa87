"""Events a stopped worker left processing are picked up again without an operator."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import OrmQ, Schedule

from audit.models import Event
from connector.tasks import process_event, requeue_stale


@pytest.mark.django_db
def test_stale_processing_events_are_requeued_and_taken_over(tenant):
    long_ago = timezone.now() - timedelta(minutes=30)
    stuck = Event.objects.create(tenant=tenant, name="invoice.create", object_id="1", status="processing")
    Event.objects.filter(pk=stuck.pk).update(started_at=long_ago)
    running = Event.objects.create(
        tenant=tenant, name="invoice.create", object_id="2", status="processing", started_at=timezone.now()
    )

    assert requeue_stale() == 1
    queued = [task.task for task in OrmQ.objects.all()]
    assert [(t["func"], t["args"]) for t in queued] == [("connector.tasks.process_event", (stuck.pk,))]

    # The queued run takes the stale event over (this tenant has no FreshBooks account: a clear failure).
    process_event(stuck.pk)
    stuck.refresh_from_db()
    assert stuck.status == "failed" and "no FreshBooks account" in stuck.status_detail and stuck.attempts == 1
    running.refresh_from_db()
    assert running.status == "processing"


@pytest.mark.django_db
def test_the_sweep_is_scheduled():
    schedule = Schedule.objects.get(name="requeue-stale-events")
    assert schedule.func == "connector.tasks.requeue_stale" and schedule.minutes == 10
