"""Fixtures of the operator API tests: the suggested groups (as the data migrations make them), one staff user per
role with an API token, and a client that calls the API with a role's token."""

import importlib
import json

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from tenants.api_tokens import issue

ROLES = ("viewer", "operator", "administrator")
# The data migrations that create and complete the suggested groups, in order.
GROUP_MIGRATIONS = [
    ("tenants", "0004_priv_groups", "create_groups"),
    ("connector", "0006_opsa_reconcile_groups", "complete_groups"),
    ("tenants", "0006_ops_pause", "complete_groups"),
    ("audit", "0006_ops_triage", "complete_groups"),
    ("tenants", "0007_api_tokens", "complete_groups"),
]


@pytest.fixture(autouse=True)
def fresh_throttle_counts():
    """DRF's throttles count in the default cache, which outlives a test: start every test from zero."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def groups(db):
    """The suggested groups. A transactional test run earlier flushes every table, data migrations' rows
    included: then run those migrations' functions again."""
    if Group.objects.filter(name="viewer").exists():
        return
    loader = MigrationLoader(connection)
    for app_label, name, function in GROUP_MIGRATIONS:
        state = loader.project_state((app_label, name), at_end=True)
        module = importlib.import_module(f"{app_label}.migrations.{name}")
        getattr(module, function)(state.apps, None)


@pytest.fixture
def users(django_user_model, groups):
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
