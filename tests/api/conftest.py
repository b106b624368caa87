"""Fixtures of the operator API tests: the suggested groups (as the data migrations make them), one staff user per
role with an API token, and a client that calls the API with a role's token."""

import json

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache

from tenants.api_tokens import issue

ROLES = ("viewer", "operator", "administrator")


@pytest.fixture(autouse=True)
def fresh_throttle_counts():
    """DRF's throttles count in the default cache, which outlives a test: start every test from zero."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def users(django_user_model, suggested_groups):
    """{role: staff user}: the three suggested groups, and "nobody" (staff without any permission)."""
    found = {}
    for role in ("nobody", *ROLES):
        user = django_user_model.objects.create_user(role, password="pass-123456789", is_staff=True)
        if role != "nobody":
            user.groups.add(Group.objects.get(name=role))
        found[role] = user
    return found


@pytest.fixture
def tokens(users):
    """{role: API token secret}; "anonymous" has none."""
    return {role: issue(user, f"{role} script")[1] for role, user in users.items()}


class Api:
    """Calls the API through Django's test client as a role (its token), or anonymously."""

    def __init__(self, client, tokens):
        self.client, self.tokens = client, tokens

    def headers(self, role):
        secret = self.tokens.get(role)
        return {"HTTP_AUTHORIZATION": f"Token {secret}"} if secret else {}

    def get(self, path, role, **params):
        return self.client.get(path, params, **self.headers(role))

    def post(self, path, role, body=None):
        data = json.dumps(body if body is not None else {})
        return self.client.post(path, data, content_type="application/json", **self.headers(role))


@pytest.fixture
def api(client, tokens):
    return Api(client, tokens)
