"""Inbound size limits fitted to each sender: Jira deliveries embed the whole issue and Atlassian documents up to
25 MB (JIRA_WEBHOOK_MAX_BODY), FreshBooks posts a few form fields (WEBHOOK_MAX_BODY, 64 KiB). Larger bodies get 413
without being read; normal deliveries are never lost (research row 04: a signed 85 KB issue_deleted got 413)."""

import io
import json

from django.core.handlers.wsgi import WSGIRequest
from django.test import RequestFactory

from audit.models import Event
from connector.endpoints import jira as jira_endpoints
from tests.connector.endpoints.test_jira import (  # noqa: F401 - fixtures
    basic_site,
    client_secret,
    cloud_issue_deleted,
    gateway,
    links,
    oauth_site,
    post_admin,
    post_dynamic,
    states,
)
from tests.fakes.freshbooks_callbacks import delivery_fields, signed_delivery


def big_issue_deleted(description=30_000, comments=5, comment_size=10_000):
    body = cloud_issue_deleted()
    body["issue"]["fields"]["description"] = "d" * description
    body["issue"]["fields"]["comment"] = {"comments": [{"id": str(n), "body": "c" * comment_size}
                                                       for n in range(comments)]}  # fmt: skip
    return body


def test_a_signed_85_kb_issue_deleted_is_acted_on(client, basic_site, links):  # noqa: F811
    body = big_issue_deleted()
    assert 85_000 < len(json.dumps(body)) < 90_000

    response = post_admin(client, basic_site, body)

    assert response.status_code == 200, response.content
    assert states(links)["issue"] == "deleted" and states(links)["issue_worklog"] == "deleted"


def test_a_3_mb_dynamic_delivery_is_acted_on(client, oauth_site, links):  # noqa: F811
    body = big_issue_deleted(description=1_000_000, comments=20, comment_size=100_000) | {
        "matchedWebhookIds": [1001]
    }
    response = post_dynamic(client, body)
    assert response.status_code == 200, response.content
    assert states(links)["issue"] == "deleted"


class CountingInput(io.BytesIO):
    def __init__(self, data):
        super().__init__(data)
        self.taken = 0

    def read(self, size=-1):
        chunk = super().read(size)
        self.taken += len(chunk)
        return chunk


def test_over_the_jira_limit_is_413_without_reading_the_body(settings, basic_site):  # noqa: F811
    settings.JIRA_WEBHOOK_MAX_BODY = 100_000
    data = json.dumps(big_issue_deleted(description=300_000)).encode()
    stream = CountingInput(data)
    environ = RequestFactory()._base_environ(
        PATH_INFO=f"/webhooks/jira/{basic_site.uuid}/", REQUEST_METHOD="POST", CONTENT_TYPE="application/json",
        **{"wsgi.input": stream, "CONTENT_LENGTH": str(len(data))},
    )  # fmt: skip

    response = jira_endpoints.admin_webhook(WSGIRequest(environ), site_uuid=basic_site.uuid)

    assert response.status_code == 413
    assert stream.taken == 0
    assert not Event.objects.exists()


def test_freshbooks_keeps_its_small_limit(client, settings, db):
    fields = {**delivery_fields(), "padding": "x" * settings.WEBHOOK_MAX_BODY}
    response = client.post(
        "/webhooks/freshbooks/",
        signed_delivery(fields, "v"),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413
