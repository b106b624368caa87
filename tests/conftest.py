import pytest


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user(
        "operator", "operator@example.com", "operator-pass-123", is_staff=True, is_superuser=True
    )


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def tenant(db):
    from tenants.models import Tenant

    return Tenant.objects.create(name="Acme Corp", slug="acme")


@pytest.fixture
def fake_server():
    """A factory of loopback FakeServers, all shut down after the test."""
    from tests.fakes.server import FakeServer

    servers = []

    def make(name="fake"):
        server = FakeServer(name)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()
