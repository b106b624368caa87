"""Events a stopped worker left processing are picked up again without an operator."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.module_loading import import_string
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
def test_the_sweep_is_scheduled_every_ten_minutes_and_its_function_does_the_sweep(tenant):
    schedule = Schedule.objects.get(name="requeue-stale-events")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (Schedule.MINUTES, 10, -1)
    stuck = Event.objects.create(tenant=tenant, name="invoice.create", object_id="1", status="processing")
    Event.objects.filter(pk=stuck.pk).update(started_at=timezone.now() - timedelta(minutes=30))

    assert import_string(schedule.func)() == 1  # what the worker will call, resolved as it resolves it
    assert [task.task["args"] for task in OrmQ.objects.all()] == [(stuck.pk,)]
