import pytest

from connector.endpoints import authentication
from connector.sandbox import jira as sandbox_jira
from tests import jira_spec

# The vendor fakes are the sandbox's (connector/sandbox); in tests, fake Jira checks every request against the spec.
sandbox_jira.REQUEST_CHECK = jira_spec.validate


@pytest.fixture(autouse=True)
def fresh_verifier_cache():
    """Each test starts as a new web process would: no verified FreshBooks callbacks cached (tests reuse
    account ids and verifiers with new rows)."""
    authentication._cache.clear()


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
    from connector.sandbox.server import FakeServer

    servers = []

    def make(name="fake"):
        server = FakeServer(name)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def fb_auth(settings):
    """The fake FreshBooks with its OAuth routes (authorize page, token endpoint, users/me); settings point at it."""
    from connector.sandbox.freshbooks import make_fake_freshbooks
    from connector.sandbox.freshbooks_auth import install_auth_routes

    server = install_auth_routes(make_fake_freshbooks())
    settings.FRESHBOOKS_API_URL = settings.FRESHBOOKS_AUTH_URL = server.url
    yield server
    server.close()


@pytest.fixture
def atl(settings):
    """A fake auth.atlassian.com, with a fake Jira Cloud as the api.atlassian.com gateway (`atl.jira`)."""
    from connector.sandbox.atlassian import CLOUD_ID, make_fake_atlassian
    from connector.sandbox.jira import FakeJira, install_core_routes

    jira = install_core_routes(FakeJira(cloud_id=CLOUD_ID))
    auth = make_fake_atlassian(jira)
    settings.ATLASSIAN_AUTH_URL, settings.ATLASSIAN_API_URL = auth.url, jira.url
    auth.jira = jira
    yield auth
    auth.close()
    jira.close()
    assert not jira.spec_errors, jira.spec_errors


@pytest.fixture
def fake_jira():
    """A fake Jira Cloud site (Basic auth): core, issue, worklog, search and user routes.

    Fails the test on any request that does not conform to the Jira Cloud OpenAPI spec."""
    from connector.sandbox.jira import FakeJira, install_core_routes
    from connector.sandbox.jira_issues import install_issue_routes

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


CHROMIUM = "/usr/bin/chromium"


def pytest_collection_modifyitems(config, items):
    """Browser tests need the system Chromium (Debian package `chromium`; CI installs it)."""
    import os

    if os.path.exists(CHROMIUM):
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing (Debian package chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def page(monkeypatch):
    """A page in the system Chromium, headless, driven by Playwright (its own browser download is not used)."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page()
        page.set_default_timeout(15_000)
        yield page
        browser.close()


# The data migrations that create and complete the suggested groups (viewer, operator, administrator), in order.
GROUP_MIGRATIONS = [
    ("tenants", "0004_priv_groups", "create_groups"),
    ("connector", "0006_opsa_reconcile_groups", "complete_groups"),
    ("tenants", "0006_ops_pause", "complete_groups"),
    ("audit", "0006_ops_triage", "complete_groups"),
    ("tenants", "0007_api_tokens", "complete_groups"),
]


@pytest.fixture
def suggested_groups(db):
    """The groups the data migrations create. A transactional test run earlier flushes every table (Django's
    TransactionTestCase), data migrations' rows included: then run those migrations' functions again."""
    import importlib

    from django.contrib.auth.models import Group
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    if Group.objects.filter(name="viewer").exists():
        return
    loader = MigrationLoader(connection)
    for app_label, name, function in GROUP_MIGRATIONS:
        state = loader.project_state((app_label, name), at_end=True)
        module = importlib.import_module(f"{app_label}.migrations.{name}")
        getattr(module, function)(state.apps, None)
