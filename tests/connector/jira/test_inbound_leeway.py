"""Inbound delivery tokens: a small clock difference between Atlassian and this host is tolerated on iat, nbf
and exp (INBOUND_CLOCK_LEEWAY, 30 s by default); the signature still decides (research row 13)."""

import time
import uuid

import jwt
import pytest

from tests.connector.endpoints.test_jira import (  # noqa: F401 - fixtures
    CLIENT_SECRET,
    OTHER_SECRET,
    client_secret,
    cloud_issue_deleted,
    gateway,
    links,
    oauth_site,
    states,
)


def deliver(client, **claims):
    body = cloud_issue_deleted() | {"matchedWebhookIds": [1001]}
    secret = claims.pop("secret", CLIENT_SECRET)
    token = jwt.encode({"iss": "atlassian", **claims}, secret, "HS256")
    return client.post(
        "/webhooks/jira/", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_X_ATLASSIAN_WEBHOOK_IDENTIFIER=str(uuid.uuid4()),
    )  # fmt: skip


def test_a_token_issued_3_seconds_in_the_future_is_accepted(client, oauth_site, links):  # noqa: F811 - fixtures
    now = int(time.time())
    response = deliver(client, iat=now + 3, exp=now + 180)
    assert response.status_code == 200, response.content
    assert states(links)["issue"] == "deleted"


@pytest.mark.parametrize("claims", [{"nbf": 10, "exp": 180}, {"iat": -200, "exp": -10}])
def test_nbf_and_exp_have_the_same_leeway(client, oauth_site, links, claims):  # noqa: F811 - fixtures
    now = int(time.time())
    response = deliver(client, **{name: now + offset for name, offset in claims.items()})
    assert response.status_code == 200, response.content
    assert states(links)["issue"] == "deleted"


@pytest.mark.parametrize(
    "claims",
    [
        {"iat": 120, "exp": 300},
        {"iat": -400, "exp": -60},
        {"nbf": 90, "exp": 300},
        {"exp": 180, "secret": OTHER_SECRET},
    ],
)
def test_beyond_the_leeway_or_with_another_key_is_refused(client, oauth_site, links, claims):  # noqa: F811 - fixtures
    now = int(time.time())
    claims = {k: (now + v if k != "secret" else v) for k, v in claims.items()}
    assert deliver(client, **claims).status_code == 401
    assert states(links)["issue"] == "created"


def test_the_leeway_is_a_setting(client, oauth_site, links, settings):  # noqa: F811 - fixtures
    settings.INBOUND_CLOCK_LEEWAY = 0
    now = int(time.time())
    assert deliver(client, iat=now + 3, exp=now + 180).status_code == 401
