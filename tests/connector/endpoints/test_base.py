"""What every inbound endpoint shares (connector.endpoints.base): POST only, the sender's body limit, and
one JSON error shape, {"error": "..."}, with nothing stored for a refused delivery."""

import io
import json
import uuid

import pytest

from audit.models import Event

ENDPOINTS = ["/webhooks/freshbooks/", "/webhooks/jira/", f"/webhooks/jira/{uuid.uuid4()}/"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", ENDPOINTS)
def test_only_post_and_the_answer_is_the_one_error_shape(client, url):
    response = client.get(url)
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert response.json() == {"error": "Only POST."}


@pytest.mark.django_db
@pytest.mark.parametrize("url", ENDPOINTS)
def test_a_body_over_the_senders_limit_is_413_and_nothing_is_stored(client, url, settings):
    settings.WEBHOOK_MAX_BODY = settings.JIRA_WEBHOOK_MAX_BODY = 100  # each sender has its own limit
    response = client.post(url, b"x" * 101, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413 and response.json() == {"error": "Body larger than 100 bytes."}
    assert not Event.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ENDPOINTS)
def test_a_bad_content_length_is_400(client, url):
    response = client.post(url, b"a=b", content_type="application/x-www-form-urlencoded", CONTENT_LENGTH="x")
    assert response.status_code == 400 and response.json() == {"error": "Bad Content-Length."}


@pytest.mark.django_db
@pytest.mark.parametrize("url", ENDPOINTS)
def test_an_unsigned_delivery_is_401_with_a_challenge_not_403(client, url):
    """DRF answers 403 instead of 401 when the authentication class names no challenge: each one does."""
    body = (
        b"name=invoice.create&object_id=1&account_id=6BApk"
        if "freshbooks" in url
        else b'{"webhookEvent": "x"}'
    )
    kind = "application/x-www-form-urlencoded" if "freshbooks" in url else "application/json"
    response = client.post(url, body, content_type=kind)
    assert response.status_code == 401 and response["WWW-Authenticate"]
    assert set(response.json()) == {"error"} and not Event.objects.exists()


class StallingInput(io.BytesIO):
    """A request body whose sender stops sending: the socket read times out."""

    def read(self, size=-1):
        raise TimeoutError("timed out")


@pytest.mark.django_db
def test_a_body_that_stalls_is_408_and_nothing_is_stored():
    from django.core.handlers.wsgi import WSGIRequest
    from django.test import RequestFactory

    from connector.endpoints.freshbooks import freshbooks_webhook

    environ = RequestFactory()._base_environ(
        PATH_INFO="/webhooks/freshbooks/",
        REQUEST_METHOD="POST",
        CONTENT_TYPE="application/x-www-form-urlencoded",
        **{"wsgi.input": StallingInput(b""), "CONTENT_LENGTH": "60000"},
    )
    response = freshbooks_webhook(WSGIRequest(environ))
    response.render()
    assert response.status_code == 408 and json.loads(response.content) == {
        "error": "Body not received in time."
    }
    assert not Event.objects.exists()
