"""Receiving Jira webhooks: verification, dedup, audit Event, and the ledger kept true.

Payloads are the real samples in tests/fixtures/jira/webhooks/ (see SOURCES.md); variations are built
here in the test, the fixture files stay unchanged.
"""

import copy
import hashlib
import hmac
import json
import time
import uuid
from datetime import timedelta

import jwt
import pytest
from django.utils import timezone

from audit.models import Event
from connector.jira import inbound
from connector.models import Link
from connector.sandbox.jira import FakeJira, install_core_routes
from connector.sandbox.jira_issues import install_issue_routes
from tenants.models import ConnectionStatus, JiraSite
from tests import FIXTURES

SAMPLES = FIXTURES / "jira" / "webhooks"
HOOK_SECRET = "hook-secret-for-tests-0123456789abcdef"
CLIENT_SECRET = "atl-client-secret-of-a-realistic-length-0123456789"
OTHER_SECRET = "another-client-secret-of-a-realistic-length-98765"


@pytest.fixture(autouse=True)
def client_secret(settings):
    settings.ATLASSIAN_CLIENT_SECRET = CLIENT_SECRET


def sample(name):
    return json.loads((SAMPLES / name).read_text())


def cloud_issue_deleted():
    """A jira:issue_deleted from the Cloud site of the other samples (zulipp.atlassian.net), for the routing of
    dynamic webhooks by the sending site: issue_updated__status.json with its webhookEvent changed. The
    captured issue_deleted.json comes from a Server site (its self links name another host)."""
    body = sample("issue_updated__status.json")
    body["webhookEvent"] = "jira:issue_deleted"
    body.pop("changelog")
    return body


@pytest.fixture
def bug15(tenant):
    """Ledger rows for the issue of the captured issue_deleted.json (10400, BUG-15) and a worklog on it."""
    return {
        "bug": link(tenant, 5, jira_issue_id="10400", jira_issue_key="BUG-15"),
        "bug_worklog": link(tenant, 6, purpose=Link.Purpose.WORKLOG, object_type="time_entry",
                            jira_issue_id="10400", jira_issue_key="BUG-15", jira_worklog_id="20002"),
    }  # fmt: skip


@pytest.fixture
def basic_site(tenant):
    return JiraSite.objects.create(
        tenant=tenant, base_url="https://acme.atlassian.net", email="ops@acme.test", api_token="t",
        status=ConnectionStatus.CONNECTED, webhook_ids=["7"], webhook_secret=HOOK_SECRET,
    )  # fmt: skip


GATEWAY_TOKEN = "gateway-access-token"


@pytest.fixture
def gateway(settings):
    """A fake api.atlassian.com for the OAuth site cloud-1: a dynamic delivery is checked against the issues it
    holds (none: every issue the samples name is gone)."""
    jira = FakeJira(cloud_id="cloud-1", bearer_tokens={GATEWAY_TOKEN})
    install_issue_routes(install_core_routes(jira))
    settings.ATLASSIAN_API_URL = jira.url
    yield jira
    jira.close()


@pytest.fixture
def oauth_site(tenant, gateway):
    return JiraSite.objects.create(  # the site the samples were captured from (their "self" links)
        tenant=tenant, base_url="https://zulipp.atlassian.net", cloud_id="cloud-1",
        auth_method=JiraSite.AuthMethod.OAUTH2, status=ConnectionStatus.CONNECTED, webhook_ids=[1001],
        access_token=GATEWAY_TOKEN, token_expires_at=timezone.now() + timedelta(hours=1),
    )  # fmt: skip


def link(tenant, n, **fields):
    defaults = {"purpose": Link.Purpose.ISSUE, "object_type": "invoice", "state": Link.State.CREATED}
    return Link.objects.create(
        tenant=tenant, dedupe_key=f"acme:test:{n}", object_id=str(n), **(defaults | fields)
    )


@pytest.fixture
def links(tenant):
    """The connector's ledger: issue 10000 (TEST-1, from the issue samples) with a worklog, plus the
    worklog 10033 of worklog_deleted.json on issue 10014, plus an unrelated issue."""
    return {
        "issue": link(tenant, 1, jira_issue_id="10000", jira_issue_key="TEST-1"),
        "issue_worklog": link(tenant, 2, purpose=Link.Purpose.WORKLOG, object_type="time_entry",
                              jira_issue_id="10000", jira_issue_key="TEST-1", jira_worklog_id="20001"),
        "worklog": link(tenant, 3, purpose=Link.Purpose.WORKLOG, object_type="time_entry",
                        jira_issue_id="10014", jira_issue_key="FIN-14", jira_worklog_id="10033"),
        "other": link(tenant, 4, jira_issue_id="10999", jira_issue_key="FIN-99"),
    }  # fmt: skip


def states(links):
    return {name: Link.objects.get(pk=row.pk).state for name, row in links.items()}


def post_admin(client, site, body, identifier=None, secret=HOOK_SECRET, signature=None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"HTTP_X_ATLASSIAN_WEBHOOK_IDENTIFIER": identifier or str(uuid.uuid4())}
    if signature is None:
        signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    if signature:
        headers["HTTP_X_HUB_SIGNATURE"] = signature
    return client.post(f"/webhooks/jira/{site.uuid}/", raw, content_type="application/json", **headers)


def token(secret=CLIENT_SECRET, expires_in=60, **claims):
    now = int(time.time())
    return jwt.encode({"iss": "atlassian", "iat": now, "exp": now + expires_in, **claims}, secret, "HS256")


def post_dynamic(client, body, auth=None, identifier=None):
    return client.post(
        "/webhooks/jira/", json.dumps(body), content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token()}" if auth is None else auth,
        HTTP_X_ATLASSIAN_WEBHOOK_IDENTIFIER=identifier or str(uuid.uuid4()),
    )  # fmt: skip


# --- acting on deliveries ----------------------------------------------------------------------------


def test_issue_deleted_marks_the_issue_and_its_worklogs_deleted(client, basic_site, links, bug15):
    body = sample("issue_deleted.json")  # captured by Zulip (SOURCES.md): issue 10400, BUG-15
    response = post_admin(client, basic_site, body)
    assert response.status_code == 200
    event = Event.objects.get()
    assert response.json() == {"ok": True, "event": event.pk, "status": "succeeded"}
    assert states(bug15) == {"bug": "deleted", "bug_worklog": "deleted"}
    assert set(states(links).values()) == {"created"}  # other issues and worklogs are untouched
    assert (event.source, event.tenant, event.name, event.object_id) == (
        "jira",
        basic_site.tenant,
        "jira:issue_deleted",
        "10400",
    )
    assert event.status == Event.Status.SUCCEEDED and event.jira_key == "BUG-15"
    assert event.status_detail == "2 link(s) updated."
    assert event.payload == inbound.kept(body)  # only the parts the connector reads
    assert event.delivery_id.endswith(response.request["HTTP_X_ATLASSIAN_WEBHOOK_IDENTIFIER"])


def test_worklog_deleted_marks_only_that_worklog_deleted(client, basic_site, links):
    response = post_admin(client, basic_site, sample("worklog_deleted.json"))
    assert response.status_code == 200
    assert states(links) == {"issue": "created", "issue_worklog": "created", "worklog": "deleted",
                             "other": "created"}  # fmt: skip
    event = Event.objects.get()
    assert (event.name, event.object_id, event.status) == ("worklog_deleted", "10033", "succeeded")


def test_repeated_identifier_is_acted_on_once(client, basic_site, links):
    body = sample("worklog_deleted.json")
    assert post_admin(client, basic_site, body, identifier="delivery-1").status_code == 200
    # A replay re-created the worklog; Jira then retries the old delivery: it must not undo the replay.
    Link.objects.filter(pk=links["worklog"].pk).update(state=Link.State.CREATED)
    again = post_admin(client, basic_site, body, identifier="delivery-1")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert states(links)["worklog"] == "created"
    assert Event.objects.count() == 1


def test_rolled_back_links_stay_rolled_back(client, basic_site, bug15):
    Link.objects.filter(pk=bug15["bug"].pk).update(state=Link.State.ROLLED_BACK)
    response = post_admin(client, basic_site, sample("issue_deleted.json"))
    assert response.status_code == 200 and response.json()["status"] == "succeeded"
    assert states(bug15) == {"bug": "rolled_back", "bug_worklog": "deleted"}
    assert Event.objects.get().status_detail == "1 link(s) updated."
    # Everything of the issue already gone: acknowledged, and recorded as nothing to do.
    again = post_admin(client, basic_site, sample("issue_deleted.json"))
    assert again.status_code == 200 and again.json()["status"] == "skipped"
    assert states(bug15) == {"bug": "rolled_back", "bug_worklog": "deleted"}


def test_moved_issue_updates_the_stored_key(client, basic_site, links):
    body = sample("issue_updated__status.json")
    body["issue"]["key"] = "OPS-7"  # moved from TEST to OPS: Jira adds "Key" and "project" changelog items
    body["changelog"]["items"].append(
        {
            "field": "Key",
            "fieldtype": "jira",
            "from": None,
            "fromString": "TEST-1",
            "to": None,
            "toString": "OPS-7",
        }
    )
    assert post_admin(client, basic_site, body).status_code == 200
    assert Link.objects.get(pk=links["issue"].pk).jira_issue_key == "OPS-7"
    assert Link.objects.get(pk=links["issue_worklog"].pk).jira_issue_key == "OPS-7"
    assert Link.objects.get(pk=links["other"].pk).jira_issue_key == "FIN-99"
    assert Event.objects.get().status == Event.Status.SUCCEEDED


def test_key_differing_from_the_ledger_is_taken_even_without_changelog(client, basic_site, links):
    body = sample("issue_updated__status.json")  # status change only
    body["issue"]["key"] = "FIN-3"
    response = post_admin(client, basic_site, body)
    assert response.status_code == 200 and response.json()["status"] == "succeeded"
    assert [Link.objects.get(pk=links[name].pk).jira_issue_key for name in ("issue", "issue_worklog")] == [
        "FIN-3",
        "FIN-3",
    ]
    assert Link.objects.get(pk=links["other"].pk).jira_issue_key == "FIN-99"
    assert Event.objects.get().status_detail == "2 link(s) updated."


def test_plain_update_and_other_events_are_acknowledged_and_skipped(client, basic_site, links):
    for name in ("issue_updated__status.json", "comment_created.json", "worklog_updated.json"):
        assert post_admin(client, basic_site, sample(name)).status_code == 200
    assert set(Event.objects.values_list("status", flat=True)) == {Event.Status.SKIPPED}
    assert list(Event.objects.values_list("name", flat=True)) == ["jira:issue_updated"]  # the others: unused
    assert set(states(links).values()) == {"created"}
    assert [link.jira_issue_key for link in Link.objects.order_by("pk")] == [
        "TEST-1",
        "TEST-1",
        "FIN-14",
        "FIN-99",
    ]


@pytest.mark.parametrize("claims", [{}, {"aud": "ari:cloud:ecosystem::app/x", "sub": "557058:abc"}])
def test_dynamic_webhook_with_a_valid_jwt_is_routed_by_matched_ids(client, oauth_site, links, claims):
    body = cloud_issue_deleted() | {"matchedWebhookIds": [1001]}
    response = post_dynamic(client, body, auth=f"Bearer {token(**claims)}")
    assert response.status_code == 200
    assert states(links)["issue"] == "deleted"
    assert Event.objects.get().tenant == oauth_site.tenant


def test_same_webhook_id_on_two_sites_is_routed_by_the_sending_site(client, oauth_site, links):
    """Webhook ids are numbered per Jira site: another customer's site may hold id 1001 too."""
    from tenants.models import Tenant

    other_tenant = Tenant.objects.create(name="Other", slug="other")
    JiraSite.objects.create(
        tenant=other_tenant, base_url="https://other.atlassian.net", cloud_id="cloud-2",
        auth_method=JiraSite.AuthMethod.OAUTH2, status=ConnectionStatus.CONNECTED, webhook_ids=[1001],
        access_token=GATEWAY_TOKEN, token_expires_at=timezone.now() + timedelta(hours=1),
    )  # fmt: skip
    other_link = link(other_tenant, 9, jira_issue_id="10000", jira_issue_key="TEST-1")
    body = cloud_issue_deleted() | {"matchedWebhookIds": [1001]}  # sent by zulipp.atlassian.net
    assert post_dynamic(client, body).status_code == 200
    assert states(links)["issue"] == "deleted"
    assert Link.objects.get(pk=other_link.pk).state == Link.State.CREATED, "the other customer's link is kept"
    assert Event.objects.get().tenant == oauth_site.tenant

    gateway = copy.deepcopy(body)  # self links through api.atlassian.com name the cloud id instead
    gateway["issue"]["self"] = "https://api.atlassian.com/ex/jira/cloud-2/rest/api/2/issue/10000"
    gateway["user"]["self"] = "https://api.atlassian.com/ex/jira/cloud-2/rest/api/2/user?accountId=1"
    assert post_dynamic(client, gateway).status_code == 200
    assert Link.objects.get(pk=other_link.pk).state == Link.State.DELETED
    Link.objects.filter(pk=other_link.pk).update(state=Link.State.CREATED)

    JiraSite.objects.filter(pk=oauth_site.pk).delete()  # now only a site with another URL holds 1001
    assert post_dynamic(client, body).status_code == 404
    assert Link.objects.get(pk=other_link.pk).state == Link.State.CREATED and Event.objects.count() == 2


def test_non_ascii_signature_header_is_a_401_not_a_500(client, basic_site, links):
    response = post_admin(client, basic_site, WORKLOG, signature="sha256=\u00e9\u00e9")
    assert response.status_code == 401
    assert not Event.objects.exists()


def test_nul_characters_are_stored_without_error(client, basic_site, links):
    """PostgreSQL text cannot hold NUL: a payload (and an identifier) carrying one is still handled."""
    body = sample("worklog_deleted.json")
    body["worklog"]["id"] = "10033\u0000"
    body["issue"] = {"id": "1\u0000", "key": "FIN-\u00001"}
    response = post_admin(client, basic_site, body, identifier="delivery\u00001")
    assert response.status_code == 200
    event = Event.objects.get()
    assert (event.object_id, event.jira_key, event.payload) == ("10033", "FIN-1", inbound.kept(body))
    assert states(links)["worklog"] == "deleted"


def test_absurdly_deep_json_is_a_400(client, basic_site, links):
    assert post_admin(client, basic_site, b"[" * 20000 + b"]" * 20000).status_code == 400
    assert not Event.objects.exists()


# --- rejections: 4xx and nothing left behind ------------------------------------------------------------

WORKLOG = sample("worklog_deleted.json")
ISSUE_DELETED = cloud_issue_deleted() | {"matchedWebhookIds": [1001]}


@pytest.mark.parametrize(
    ("send", "status"),
    [
        (lambda c, s: post_admin(c, s, WORKLOG, secret="another-secret"), 401),
        (lambda c, s: post_admin(c, s, WORKLOG, signature=""), 401),
        (lambda c, s: post_admin(c, s, WORKLOG, signature="sha1=" + "0" * 40), 401),
        (lambda c, s: post_admin(c, s, WORKLOG, signature="sha256=not-hex"), 401),
        (lambda c, s: post_admin(c, JiraSite(uuid=uuid.uuid4()), WORKLOG), 401),  # like a bad signature: no enumeration
        (lambda c, s: post_admin(c, s, b"{not json"), 400),
        (lambda c, s: post_admin(c, s, b'["a list"]'), 400),
        (lambda c, s: post_admin(c, s, b"x" * (25 * 1024 * 1024 + 1)), 413),  # JIRA_WEBHOOK_MAX_BODY
        (lambda c, s: c.get(f"/webhooks/jira/{s.uuid}/"), 405),
        (lambda c, s: post_dynamic(c, ISSUE_DELETED, auth=f"Bearer {token(secret=OTHER_SECRET)}"), 401),
        (lambda c, s: post_dynamic(c, ISSUE_DELETED, auth=f"Bearer {token(expires_in=-120)}"), 401),
        (lambda c, s: post_dynamic(c, ISSUE_DELETED, auth="Bearer " + jwt.encode({"iss": "x"}, CLIENT_SECRET)), 401),
        (lambda c, s: post_dynamic(c, ISSUE_DELETED, auth=""), 401),
        (lambda c, s: post_dynamic(c, ISSUE_DELETED, auth=f"Bearer {token()}x"), 401),
        (lambda c, s: post_dynamic(c, ISSUE_DELETED | {"matchedWebhookIds": [4242]}), 404),
        (lambda c, s: post_dynamic(c, ISSUE_DELETED | {"matchedWebhookIds": "1001"}), 404),
        (lambda c, s: post_dynamic(c, {"webhookEvent": "jira:issue_deleted", "issue": "10000",
                                       "matchedWebhookIds": [1001]}), 200),  # odd shape: acknowledged, no-op
    ],
    ids=["wrong-signature", "no-signature", "sha1", "not-hex", "unknown-site", "bad-json", "not-an-object",
         "too-large", "get", "jwt-other-secret", "jwt-expired", "jwt-without-exp", "no-jwt", "jwt-tampered",
         "unknown-webhook-ids", "ids-not-a-list", "odd-shape"],
)  # fmt: skip
def test_bad_deliveries_are_refused_and_leave_nothing(
    client, basic_site, oauth_site_other_tenant, links, send, status
):
    response = send(client, basic_site)
    assert response.status_code == status
    assert set(states(links).values()) == {"created"}
    if status != 200:
        assert not Event.objects.exists()
        assert response["Content-Type"] == "application/json"


@pytest.fixture
def oauth_site_other_tenant(db):
    from tenants.models import Tenant

    other = Tenant.objects.create(name="Other", slug="other")
    return JiraSite.objects.create(
        tenant=other, base_url="https://other.atlassian.net", cloud_id="cloud-2",
        auth_method=JiraSite.AuthMethod.OAUTH2, status=ConnectionStatus.CONNECTED, webhook_ids=[1001],
    )  # fmt: skip


def test_inactive_tenant_is_refused(client, basic_site, links):
    basic_site.tenant.active = False
    basic_site.tenant.save()
    assert post_admin(client, basic_site, sample("worklog_deleted.json")).status_code == 403
    assert not Event.objects.exists()


def test_same_identifier_on_two_sites_is_two_deliveries(client, basic_site, links):
    from tenants.models import Tenant

    other = JiraSite.objects.create(
        tenant=Tenant.objects.create(name="Other", slug="other"), base_url="https://o.atlassian.net",
        webhook_secret=HOOK_SECRET,
    )  # fmt: skip
    body = copy.deepcopy(sample("worklog_deleted.json"))
    assert post_admin(client, basic_site, body, identifier="42").status_code == 200
    assert post_admin(client, other, body, identifier="42").status_code == 200
    assert Event.objects.count() == 2
