"""What every inbound endpoint shares (connector.endpoints.base): POST only, the sender's body limit, and
one JSON error shape, {"error": "..."}, with nothing stored for a refused delivery."""

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
