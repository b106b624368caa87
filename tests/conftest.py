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


@pytest.fixture
def fake_jira():
    """A fake Jira Cloud site (Basic auth): core, issue, worklog, search and user routes.

    Fails the test on any request that does not conform to the Jira Cloud OpenAPI spec."""
    from tests.fakes.jira import FakeJira, install_core_routes
    from tests.fakes.jira_issues import install_issue_routes

    jira = install_issue_routes(install_core_routes(FakeJira()))
    yield jira
    jira.close()
    assert not jira.spec_errors, "requests that do not conform to the Jira Cloud OpenAPI spec:\n" + "\n".join(
        jira.spec_errors
    )


# Event-processing fixtures (fake FreshBooks records `fb`, fake Jira `jira` — "server" via indirect
# parametrization — and the `connected` tenant with default mappings); see tests/processing.py.
from tests import processing  # noqa: E402

connected, fb, jira = processing.connected, processing.fb, processing.jira
