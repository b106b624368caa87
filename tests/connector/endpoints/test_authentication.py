"""The webhook authentication classes on their own (connector.endpoints.authentication): a good signature
identifies the sender's tenant as request.auth; a bad, missing or another tenant's signature is refused with 401
(and a WWW-Authenticate challenge, which DRF needs to answer 401 rather than 403); the Jira classes refuse
before the body is read."""

import hashlib
import hmac
import json
import time

import jwt
import pytest
from rest_framework.exceptions import APIException
from rest_framework.test import APIRequestFactory

from connector.endpoints.authentication import (
    CallbackHandshake,
    FreshBooksSender,
    FreshBooksSignature,
    JiraHubSignature,
    JiraWebhookJWT,
)
from connector.endpoints.freshbooks import FreshBooksWebhookView
from connector.endpoints.jira import AdminWebhookView, DynamicWebhookView
from connector.sandbox.freshbooks_callbacks import delivery_fields, signed_delivery
from tenants.models import ConnectionStatus, FreshBooksWebhook, JiraSite, Tenant
from tests.processing import connected_account

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded"
VERIFIER_A, VERIFIER_B = "verifier-of-tenant-a", "verifier-of-tenant-b"
SECRET_A, SECRET_B = "hub-secret-of-site-a-0123456789", "hub-secret-of-site-b-9876543210"
CLIENT_SECRET = "atl-client-secret-of-a-realistic-length-0123456789"
factory = APIRequestFactory()


def drf_request(view_class, django_request, **kwargs):
    """The DRF Request the view would hand its authentication class (with the view's parser)."""
    view = view_class()
    view.args, view.kwargs = (), kwargs
    return view.initialize_request(django_request, **kwargs)


def authenticate(authentication, request):
    """(status, request.auth): 200 when identified, else the refusal's status."""
    try:
        _, auth = authentication.authenticate(request)
    except APIException as exc:
        return exc.status_code, None
    return 200, auth


# --- FreshBooks: X-FreshBooks-Hmac-SHA256 ---------------------------------------------------------------


@pytest.fixture
def accounts(tenant):
    other = Tenant.objects.create(name="Beta Ltd", slug="beta")
    found = {}
    for key, owner, account_id, business_id, verifier in (
        ("a", tenant, "6BApk", "6543", VERIFIER_A),
        ("b", other, "Zq9Xk", "7777", VERIFIER_B),
    ):
        account = connected_account(owner, account_id, business_id)
        FreshBooksWebhook.objects.create(
            account=account,
            callback_id=len(found) + 1,
            event="invoice",
            uri="https://x.test/",
            verifier=verifier,
            verified=True,
        )
        found[key] = account
    return found


def freshbooks(fields, verifier=None, signature=None):
    body, headers = signed_delivery(fields, verifier or "unused")
    if signature is not None:
        headers = {"X-FreshBooks-Hmac-SHA256": signature} if signature else {}
    request = factory.post("/webhooks/freshbooks/", body, content_type=FORM, headers=headers)
    return authenticate(FreshBooksSignature(), drf_request(FreshBooksWebhookView, request))


def test_freshbooks_good_signature_identifies_the_account_and_its_tenant(accounts):
    status, sender = freshbooks(delivery_fields(), VERIFIER_A)
    assert status == 200 and isinstance(sender, FreshBooksSender)
    a = accounts["a"]
    assert (sender.tenant_pk, sender.account_pk, sender.business_id) == (a.tenant_id, a.pk, "6543")
    # The same delivery hashes the same (a replay), another one does not.
    assert freshbooks(delivery_fields(), VERIFIER_A)[1].body_hash == sender.body_hash
    assert freshbooks(delivery_fields(object_id="2"), VERIFIER_A)[1].body_hash != sender.body_hash


@pytest.mark.parametrize("signature", ["", "not-a-signature", "66m3NCYE4s7FV/3rFs/xCnKvkHg5nuqiBe9IWfSz4MM="])
def test_freshbooks_missing_or_bad_signature_is_401(accounts, signature):
    assert freshbooks(delivery_fields(), signature=signature) == (401, None)


def test_freshbooks_cross_tenant_signature_is_401(accounts):
    """Tenant A's delivery signed with tenant B's verifier: refused, not routed to B."""
    assert freshbooks(delivery_fields(), VERIFIER_B) == (401, None)
    status, sender = freshbooks(delivery_fields(account_id="Zq9Xk", business_id="7777"), VERIFIER_B)
    assert status == 200 and sender.tenant_pk == accounts["b"].tenant_id
    assert freshbooks(delivery_fields(account_id="Zq9Xk", business_id="7777"), VERIFIER_A) == (401, None)


def test_freshbooks_handshake_names_the_callback_without_a_signature(accounts):
    fields = {"name": "callback.verify", "object_id": "1", "account_id": "6BApk", "verifier": "v-123"}
    hook = FreshBooksWebhook.objects.get(account=accounts["a"])
    assert freshbooks(fields, signature="") == (200, CallbackHandshake(hook.pk, "v-123"))
    assert freshbooks({**fields, "object_id": "2"}, signature="")[0] == 404, "B's callback is not A's"


# --- FreshBooks: the verified callbacks a web process keeps (WEBHOOK_VERIFIER_CACHE) ------------------------


def test_verified_callbacks_are_read_once_per_cache_period(accounts, django_assert_num_queries):
    assert freshbooks(delivery_fields(), VERIFIER_A)[0] == 200
    with django_assert_num_queries(0):
        assert freshbooks(delivery_fields(object_id="2"), VERIFIER_A)[0] == 200


def test_without_the_cache_every_delivery_reads_them(accounts, settings, django_assert_num_queries):
    settings.WEBHOOK_VERIFIER_CACHE = 0
    assert freshbooks(delivery_fields(), VERIFIER_A)[0] == 200
    with django_assert_num_queries(1):
        assert freshbooks(delivery_fields(object_id="2"), VERIFIER_A)[0] == 200


def test_a_verifier_changed_elsewhere_is_read_again_when_the_cached_one_does_not_sign(accounts):
    assert freshbooks(delivery_fields(), VERIFIER_A)[0] == 200
    # Another process stores a new verifier (no signal reaches this one).
    FreshBooksWebhook.objects.filter(account=accounts["a"]).update(verifier="a-new-verifier-0123")
    assert freshbooks(delivery_fields(), "a-new-verifier-0123")[0] == 200
    assert freshbooks(delivery_fields(), VERIFIER_A) == (401, None)


def test_a_callback_deleted_in_this_process_is_refused_at_once(accounts):
    assert freshbooks(delivery_fields(), VERIFIER_A)[0] == 200
    FreshBooksWebhook.objects.get(account=accounts["a"]).delete()
    assert freshbooks(delivery_fields(), VERIFIER_A) == (401, None)


def test_a_tenant_deactivated_elsewhere_is_refused_once_the_cache_period_ends(accounts, settings):
    settings.WEBHOOK_VERIFIER_CACHE = 0.5
    assert freshbooks(delivery_fields(), VERIFIER_A)[0] == 200
    Tenant.objects.filter(pk=accounts["a"].tenant_id).update(active=False)  # another process: no signal here
    assert freshbooks(delivery_fields(), VERIFIER_A)[0] == 200, "within the cache period (documented)"
    time.sleep(0.6)
    assert freshbooks(delivery_fields(), VERIFIER_A)[0] == 403


# --- Jira dynamic webhooks: the JWT -----------------------------------------------------------------------


@pytest.fixture
def oauth_sites(tenant, settings):
    settings.ATLASSIAN_CLIENT_SECRET = CLIENT_SECRET
    other = Tenant.objects.create(name="Other", slug="other")
    return {
        key: JiraSite.objects.create(
            tenant=owner,
            base_url=f"https://{key}.atlassian.net",
            cloud_id=f"cloud-{key}",
            auth_method=JiraSite.AuthMethod.OAUTH2,
            status=ConnectionStatus.CONNECTED,
            webhook_ids=[ids],
        )
        for key, owner, ids in (("a", tenant, 1001), ("b", other, 2002))
    }


def token(secret=CLIENT_SECRET):
    now = int(time.time())
    return jwt.encode({"iss": "atlassian", "iat": now, "exp": now + 60}, secret, "HS256")


def dynamic(body, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    request = factory.post(
        "/webhooks/jira/", json.dumps(body), content_type="application/json", headers=headers
    )
    drf = drf_request(DynamicWebhookView, request)
    return (*authenticate(JiraWebhookJWT(), drf), request._read_started)


def issue_deleted(site_key, ids):
    link = f"https://{site_key}.atlassian.net/rest/api/2/issue/10000"
    return {
        "webhookEvent": "jira:issue_deleted",
        "issue": {"id": "10000", "self": link},
        "matchedWebhookIds": ids,
    }


def test_jira_jwt_good_token_identifies_the_site_of_the_matched_webhook(oauth_sites):
    status, site, _ = dynamic(issue_deleted("b", [2002]), f"Bearer {token()}")
    assert status == 200 and site == oauth_sites["b"] and site.tenant.slug == "other"


@pytest.mark.parametrize("authorization", ["", "Bearer", "Basic dXNlcjpwYXNz", "Bearer not.a.jwt"])
def test_jira_jwt_missing_or_bad_token_is_401_before_the_body_is_read(oauth_sites, authorization):
    assert dynamic(issue_deleted("a", [1001]), authorization) == (401, None, False)


def test_jira_jwt_of_another_app_is_401(oauth_sites):
    assert dynamic(issue_deleted("a", [1001]), f"Bearer {token('another-apps-secret-0123456789abcdef')}")[
        :2
    ] == (
        401,
        None,
    )


def test_jira_jwt_cannot_reach_another_tenants_site(oauth_sites):
    """A body sent by site A naming site B's webhook id is not routed to B's tenant."""
    assert dynamic(issue_deleted("a", [2002]), f"Bearer {token()}")[:2] == (404, None)


# --- Jira admin webhooks: X-Hub-Signature ---------------------------------------------------------------


@pytest.fixture
def basic_sites(tenant):
    other = Tenant.objects.create(name="Other", slug="other")
    return {
        key: JiraSite.objects.create(
            tenant=owner,
            base_url=f"https://{key}.atlassian.net",
            email="ops@x.test",
            api_token="t",
            status=ConnectionStatus.CONNECTED,
            webhook_secret=secret,
        )
        for key, owner, secret in (("a", tenant, SECRET_A), ("b", other, SECRET_B))
    }


def admin(site_uuid, secret=None, signature=None):
    raw = json.dumps({"webhookEvent": "worklog_deleted", "worklog": {"id": "1"}}).encode()
    if signature is None and secret:
        signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    headers = {"X-Hub-Signature": signature} if signature else {}
    request = factory.post(
        f"/webhooks/jira/{site_uuid}/", raw, content_type="application/json", headers=headers
    )
    drf = drf_request(AdminWebhookView, request, site_uuid=site_uuid)
    return (*authenticate(JiraHubSignature(), drf), request._read_started)


def test_hub_signature_good_identifies_the_site_of_the_url(basic_sites):
    assert admin(basic_sites["a"].uuid, SECRET_A) == (200, basic_sites["a"], True)


@pytest.mark.parametrize(
    "signature", ["sha256=" + "0" * 64, "sha1=" + "0" * 40, "sha256=not-hex", "sha256=\u00e9"]
)
def test_hub_signature_bad_is_401(basic_sites, signature):
    assert admin(basic_sites["a"].uuid, signature=signature)[:2] == (401, None)


def test_hub_signature_missing_is_401_before_the_body_is_read(basic_sites):
    assert admin(basic_sites["a"].uuid) == (401, None, False)


def test_hub_signature_of_another_tenants_site_is_401(basic_sites):
    """Site A's URL with a body signed by site B's secret."""
    assert admin(basic_sites["a"].uuid, SECRET_B)[:2] == (401, None)
    assert admin(basic_sites["b"].uuid, SECRET_B)[:2] == (200, basic_sites["b"])


def test_hub_signature_for_an_unknown_site_is_401_before_the_body_is_read(basic_sites):
    import uuid

    assert admin(uuid.uuid4(), SECRET_A) == (401, None, False)


@pytest.mark.parametrize(
    "authentication",
    [FreshBooksSignature(), JiraWebhookJWT(), JiraHubSignature()],
    ids=lambda a: type(a).__name__,
)
def test_every_class_challenges_so_that_drf_answers_401_not_403(authentication):
    assert authentication.authenticate_header(None)
