"""The flow chart (issue 23, point 3): per tenant, events per hour by outcome over the last 7 days, server-rendered
as inline SVG on the admin index and the tenant page."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from audit.flow import HOURS, flows, window
from audit.models import Event
from tenants.models import Tenant

NOW = datetime(2026, 12, 5, 10, 30, tzinfo=UTC)


def at(tenant, status, when, count=1):
    for _ in range(count):
        event = Event.objects.create(tenant=tenant, name="invoice.create", object_id="1", status=status)
        Event.objects.filter(pk=event.pk).update(received_at=when)


@pytest.mark.django_db
def test_events_are_counted_per_hour_and_outcome_in_one_query(tenant, django_assert_num_queries):
    other = Tenant.objects.create(name="Beta", slug="beta")
    at(tenant, "succeeded", NOW - timedelta(minutes=20), 3)  # this hour
    at(tenant, "duplicate", NOW - timedelta(minutes=25))  # skipped
    at(tenant, "failed", NOW - timedelta(hours=2, minutes=5), 2)
    at(tenant, "resolved", NOW - timedelta(hours=2, minutes=10))  # failed, resolved since
    at(tenant, "waiting", NOW - timedelta(days=6, hours=23))  # the first hour drawn
    at(tenant, "succeeded", NOW - timedelta(days=8))  # too old
    at(tenant, "queued", NOW)  # not an outcome yet
    at(other, "failed", NOW)

    with django_assert_num_queries(1):
        found = flows([tenant, other], now=NOW)

    flow = found[tenant.pk]
    assert flow.start == window(NOW) == datetime(2026, 11, 28, 11, 0, tzinfo=UTC)
    assert flow.counts == {
        HOURS - 1: {"succeeded": 3, "skipped": 1},
        HOURS - 3: {"failed": 3},
        0: {"waiting": 1},
    }
    assert [(o, n) for o, n, _ in flow.totals()] == [
        ("succeeded", "3"), ("skipped", "1"), ("failed", "3"), ("waiting", "1"),
    ]  # fmt: skip
    assert found[other.pk].counts == {HOURS - 1: {"failed": 1}}

    bars = {bar["x"]: bar for bar in flow.bars()}
    last = bars[(HOURS - 1) * 4]
    assert last["title"] == "Sat 05 Dec 10:00 UTC: 3 succeeded, 1 skipped"
    assert [s["height"] for s in last["segments"]] == [90.0, 30.0]  # 4 events: the peak fills 120 px
    assert [s["colour"] for s in last["segments"]] == ["#2e7d32", "#9e9e9e"]
    assert [label for _x, label in flow.days()][:2] == ["Sun 29", "Mon 30"]


@pytest.mark.django_db
def test_the_admin_index_and_the_tenant_page_show_the_chart(tenant, staff_client):
    at(tenant, "succeeded", datetime.now(UTC) - timedelta(hours=1), 5)
    at(tenant, "failed", datetime.now(UTC) - timedelta(hours=1), 2)
    Tenant.objects.create(name="Quiet Ltd", slug="quiet")

    index = staff_client.get(reverse("admin:index")).content.decode()
    chart = index.split('<figure class="flow-chart" data-tenant="acme"')[1].split("</figure>")[0]
    assert "Acme Corp" in chart and "events per hour, last 7 days" in chart
    assert 'data-outcome="succeeded"' in chart and "succeeded 5" in chart and "failed 2" in chart
    assert chart.count("<rect") == 2 and 'aria-label="5 succeeded, 0 skipped, 2 failed, 0 waiting' in chart
    quiet = index.split('<figure class="flow-chart" data-tenant="quiet"')[1].split("</figure>")[0]
    assert "No events in the last 7 days" in quiet

    page = staff_client.get(reverse("admin:tenants_tenant_change", args=[tenant.pk])).content.decode()
    assert 'id="flow"' in page and "succeeded 5" in page.split('id="flow"')[1]


@pytest.mark.django_db
def test_the_chart_is_shown_only_to_who_may_view_events(client, tenant, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("tina", password="pw-tina-12345", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_tenant"))
    client.force_login(user)
    page = client.get(reverse("admin:tenants_tenant_change", args=[tenant.pk])).content.decode()
    assert "flow-chart" not in page and 'id="flow"' not in page
