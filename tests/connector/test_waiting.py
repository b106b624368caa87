"""Waiting events: held back visibly (not failed), resumed by the scheduled sweep or by a release."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import OrmQ, Schedule

from audit.models import Event
from connector import waiting
from connector.tasks import process_event, resume


def queued_ids():
    return sorted(task.task["args"][0] for task in OrmQ.objects.all())


@pytest.mark.django_db
def test_a_waiting_event_shows_what_it_waits_for_and_is_not_processed(staff_client, tenant):
    event = Event.objects.create(tenant=tenant, name="invoice.create", object_id="1", status="queued")
    today = timezone.now().astimezone(UTC)
    until = today.replace(hour=14, minute=0, second=0, microsecond=0)

    assert waiting.wait(event, until, waiting.QUOTA)
    event.refresh_from_db()
    assert (event.status, event.wait_until, event.wait_reason) == ("waiting", until, "Jira's quota")
    assert event.status_detail == "Waiting for Jira's quota until 14:00 UTC"

    page = staff_client.get(reverse("admin:audit_event_changelist")).content.decode()
    assert "Waiting for Jira&#x27;s quota until 14:00 UTC" in page
    assert process_event(event.pk) == "not claimed"  # a stray queued task does nothing
    assert Event.objects.get(pk=event.pk).attempts == 0


@pytest.mark.django_db
def test_a_finished_event_is_not_put_back_into_waiting(tenant):
    done = Event.objects.create(tenant=tenant, name="invoice.create", object_id="1", status="succeeded")
    assert not waiting.wait(done, None, waiting.TENANT_PAUSED)
    assert Event.objects.get(pk=done.pk).status == "succeeded"


@pytest.mark.django_db
def test_the_minute_sweep_queues_due_events_and_leaves_the_rest_waiting(tenant):
    schedule = Schedule.objects.get(name="resume-waiting-events")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (Schedule.MINUTES, 1, -1)
    now = timezone.now()
    due = Event.objects.create(tenant=tenant, name="invoice.create", object_id="1")
    later = Event.objects.create(tenant=tenant, name="invoice.create", object_id="2")
    paused = Event.objects.create(tenant=tenant, name="invoice.create", object_id="3")
    waiting.wait(due, now - timedelta(seconds=1), waiting.QUOTA)
    waiting.wait(later, now + timedelta(hours=1), waiting.QUOTA)
    waiting.wait(paused, None, waiting.TENANT_PAUSED)

    assert import_string(schedule.func)() == 1  # what the worker calls, resolved as it resolves it
    assert queued_ids() == [due.pk]
    due.refresh_from_db()
    assert (due.status, due.wait_until, due.wait_reason) == ("queued", None, "")
    assert Event.objects.get(pk=later.pk).status == Event.objects.get(pk=paused.pk).status == "waiting"

    # A paused tenant is resumed: its events are released whatever their time.
    assert resume(Event.objects.filter(tenant=tenant, wait_reason=waiting.TENANT_PAUSED)) == [paused.pk]
    assert queued_ids() == sorted([due.pk, paused.pk])
    assert Event.objects.get(pk=paused.pk).status == "queued"


def test_describe_names_the_day_when_it_is_not_today():
    event = Event(
        status="waiting", wait_reason="Jira's quota", wait_until=datetime(2020, 1, 2, 3, 4, tzinfo=UTC)
    )
    assert waiting.describe(event) == "waiting for Jira's quota until 2020-01-02 03:04 UTC"
    assert waiting.describe(Event(status="waiting", wait_reason="tenant paused")) == "waiting: tenant paused"
    assert waiting.describe(Event(status="queued")) == ""
