"""mlc_delivery_to_jira_write_seconds counts deliveries only (issue 23, point 3): today a rollback made 305 s
after a delivery lands in the latency histogram, and so does a replay days later."""

import pytest

from audit.models import Event
from connector.replay import replay
from connector.rollback import rollback
from tests.metrics_helpers import histogram_count, parse
from tests.processing import make_event

LATENCY = "mlc_delivery_to_jira_write_seconds"


def observed(client):
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    return histogram_count(parse(response.content.decode()), LATENCY)


@pytest.mark.django_db
def test_only_the_workers_processing_of_a_delivery_is_timed(client, connected, fb, jira):
    from connector.tasks import process_event

    start = observed(client)
    event = make_event(connected, "invoice.create", fb.samples["invoice"]["id"])
    assert process_event(event.pk) == "succeeded"
    assert observed(client) == start + 1  # the delivery's first Jira write

    replay(Event.objects.filter(pk=event.pk), actor="admin:ann", sync=True)
    event.refresh_from_db()
    assert rollback(event, actor="admin:ann")  # deletes the issue in Jira: a write, not a delivery
    assert jira.calls("DELETE", r"/rest/api/3/issue/")
    reconciled = make_event(connected, "invoice.create", fb.samples["invoice"]["id"])
    Event.objects.filter(pk=reconciled.pk).update(source=Event.Source.RECONCILE)
    process_event(reconciled.pk)

    assert observed(client) == start + 1
