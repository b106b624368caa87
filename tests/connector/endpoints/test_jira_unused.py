"""Only what is used is kept: Jira deliveries the connector does not act on are acknowledged and nothing of them
is stored; of those it acts on only the parts it reads are stored; every metric label comes from a fixed list."""

import pytest

from audit import metrics
from audit.models import Event
from connector.jira import inbound
from tests.audit.test_metrics import scrape
from tests.connector.endpoints import test_jira
from tests.connector.endpoints.test_jira import cloud_issue_deleted, post_admin, sample

basic_site, links = test_jira.basic_site, test_jira.links  # fixtures

pytestmark = pytest.mark.django_db


def label_values(samples, name, label):
    return {dict(labels).get(label) for (sample, labels) in samples if sample == name}


def test_one_signed_delivery_replayed_with_50_invented_event_names_stores_nothing(client, basic_site, links):
    body = sample("comment_created.json")
    body["issue"]["fields"]["description"] = "x" * 200_000
    for n in range(50):
        response = post_admin(client, basic_site, {**body, "webhookEvent": f"made_up_{n}"})
        assert response.status_code == 200
        assert response.json() == {"ok": True, "status": "ignored"}

    assert not Event.objects.exists()
    kinds = label_values(scrape(client), "mlc_events_total", "kind")
    assert not {kind for kind in kinds if kind and kind.startswith("made_up")}


def test_real_jira_events_the_connector_does_not_use_are_not_stored(client, basic_site, links):
    for name in ("comment_created.json", "worklog_updated.json", "issue_created_with_custom_fields.json"):
        assert post_admin(client, basic_site, sample(name)).json()["status"] == "ignored"
    assert not Event.objects.exists()


def test_of_a_delivery_acted_on_only_the_ids_are_kept(client, basic_site, links):
    body = cloud_issue_deleted()
    body["issue"]["fields"]["description"] = "secret customer text " * 10_000
    assert post_admin(client, basic_site, body).status_code == 200

    payload = Event.objects.get().payload
    assert payload["issue"] == {key: body["issue"][key] for key in ("id", "key", "self")}
    assert "secret customer text" not in str(payload) and "user" not in payload


def test_metric_labels_come_from_fixed_lists():
    assert metrics.event_kind("invoice.create") == "invoice"
    assert metrics.event_kind("jira:issue_deleted") == "jira:issue_deleted"
    assert metrics.event_kind("jira:made_up_event") == "other"
    assert metrics.event_kind("made_up.create") == "other"
    assert metrics.http_status(201) == "201" and metrics.http_status(599) == "5xx"
    assert metrics.http_status(None) == "error" and metrics.http_status(999) == "other"
    assert metrics.label("admin-typed-kind", ("event_failed",)) == "other"
    assert set(inbound.EVENT_HANDLERS) == set(metrics.JIRA_EVENTS)


def test_an_event_with_an_unknown_name_counts_as_other(client, tenant):
    before = scrape(client)
    metrics.event_finished(Event(tenant=tenant, name="jira:made_up", status="skipped"))
    metrics.event_finished(Event(tenant=tenant, name="invoice.create", status="made-up-status"))
    after = scrape(client)
    assert label_values(after, "mlc_events_total", "kind") <= {None, *metrics.EVENT_KINDS, "other"}
    assert label_values(after, "mlc_events_total", "status") <= {None, *Event.Status.values, "other"}
    assert ("mlc_events_total", frozenset({"kind": "other", "status": "skipped"}.items())) in after
    assert before != after


def test_refusals_with_statuses_outside_the_documented_ones_count_as_other(client):
    before = scrape(client)
    metrics.count_delivery("jira", 418)
    metrics.count_delivery("made-up-sender", 200)
    after = scrape(client)
    assert label_values(after, "mlc_deliveries_total", "reason") <= {
        None,
        "ok",
        "other",
        *metrics.REASONS.values(),
    }
    assert label_values(after, "mlc_deliveries_total", "source") <= {None, "jira", "freshbooks", "other"}
    assert before != after
