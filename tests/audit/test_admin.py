"""The audit trail and the ledger cannot be edited away from the admin."""

import pytest
from django.urls import reverse

from audit.models import Attempt, Event
from connector.models import Link


@pytest.mark.django_db
def test_events_attempts_and_links_cannot_be_deleted_or_forged(staff_client, tenant):
    event = Event.objects.create(tenant=tenant, name="invoice.create", object_id="1", status="failed")
    attempt = Attempt.objects.create(event=event, action="POST /rest/api/3/issue", http_status=500)
    link = Link.objects.create(tenant=tenant, dedupe_key="k", object_type="invoice", object_id="1")

    for name, obj in (("audit_event", event), ("audit_attempt", attempt), ("connector_link", link)):
        assert staff_client.get(reverse(f"admin:{name}_delete", args=[obj.pk])).status_code == 403
        bulk = {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"}
        staff_client.post(reverse(f"admin:{name}_changelist"), bulk)
    assert staff_client.get(reverse("admin:connector_link_add")).status_code == 403
    assert Event.objects.count() == Attempt.objects.count() == Link.objects.count() == 1


@pytest.mark.django_db
def test_an_operator_can_correct_a_link_state_but_nothing_else(staff_client, tenant):
    link = Link.objects.create(
        tenant=tenant,
        dedupe_key="k",
        object_type="invoice",
        object_id="1",
        jira_issue_key="FIN-1",
        state="created",
    )
    url = reverse("admin:connector_link_change", args=[link.pk])
    response = staff_client.post(url, {"state": "deleted", "jira_issue_key": "HACK-9", "dedupe_key": "x"})
    assert response.status_code == 302
    link.refresh_from_db()
    assert (link.state, link.jira_issue_key, link.dedupe_key) == ("deleted", "FIN-1", "k")
