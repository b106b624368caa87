"""`manage.py create_tenant`, `manage.py check_connections` and the admin action "Test connection", against
the loopback fakes: success output, failure output and exit codes, nothing half-saved."""

import io
import sys

import pytest
from django.contrib.messages import get_messages
from django.core.management import CommandError, call_command
from django.urls import reverse

from connector.models import IssueMapping
from connector.sandbox.freshbooks import ACCESS_TOKEN
from connector.sandbox.jira import API_TOKEN, EMAIL, FakeJira, install_core_routes
from tenants.models import ConnectionStatus, FreshBooksAccount, JiraSite, Tenant
from tests import processing

pytestmark = pytest.mark.django_db


def run(*args, **options):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def create_args(jira_url, slug="globex", project="FIN"):
    return ["create_tenant", "--name", "Globex Inc", "--slug", slug, "--jira-url", jira_url,
            "--jira-email", EMAIL, "--jira-project", project]  # fmt: skip


@pytest.fixture
def no_tty(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))


# --- create_tenant ---------------------------------------------------------------------------------------------


def test_create_tenant_creates_everything_and_prints_next_steps(fake_jira, monkeypatch, settings, no_tty):
    monkeypatch.setenv("JIRA_API_TOKEN", API_TOKEN)
    out, _ = run(*create_args(fake_jira.url))

    tenant = Tenant.objects.get(slug="globex")
    site = tenant.jira_site
    assert (site.base_url, site.email, site.api_token) == (fake_jira.url, EMAIL, API_TOKEN)
    assert site.auth_method == JiraSite.AuthMethod.BASIC and site.deployment == JiraSite.Deployment.CLOUD
    assert site.status == ConnectionStatus.CONNECTED
    mappings = IssueMapping.objects.filter(tenant=tenant)
    assert mappings.count() == 6 and {m.project_key for m in mappings} == {"FIN"}
    assert f"{settings.PUBLIC_BASE_URL}/oauth/freshbooks/connect/globex/" in out
    assert "signed in as Ops Bot" in out and "check_connections --tenant globex" in out
    assert API_TOKEN not in out


def test_create_tenant_detects_server(monkeypatch, no_tty):
    jira = install_core_routes(FakeJira(deployment="server"))
    try:
        monkeypatch.setenv("JIRA_API_TOKEN", API_TOKEN)
        out, _ = run(*create_args(jira.url))
    finally:
        jira.close()
    assert Tenant.objects.get(slug="globex").jira_site.deployment == JiraSite.Deployment.SERVER
    assert "Server / Data Center" in out


def test_create_tenant_prompts_for_the_token_on_a_terminal(fake_jira, monkeypatch):
    monkeypatch.delenv("JIRA_API_TOKEN", raising=False)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    prompts = []
    monkeypatch.setattr(
        "tenants.management.commands.create_tenant.getpass",
        lambda prompt: prompts.append(prompt) or API_TOKEN,
    )
    run(*create_args(fake_jira.url))
    assert prompts == ["Jira API token: "]
    assert Tenant.objects.get(slug="globex").jira_site.api_token == API_TOKEN


def test_create_tenant_without_token_and_terminal_fails_clearly(fake_jira, monkeypatch, no_tty):
    monkeypatch.delenv("JIRA_API_TOKEN", raising=False)
    with pytest.raises(CommandError, match="Set JIRA_API_TOKEN"):
        run(*create_args(fake_jira.url))
    assert not Tenant.objects.exists()


def test_create_tenant_token_is_never_an_argument(fake_jira, monkeypatch, no_tty):
    monkeypatch.setenv("JIRA_API_TOKEN", API_TOKEN)
    with pytest.raises(CommandError, match="unrecognized arguments"):
        run(*create_args(fake_jira.url), "--jira-token", API_TOKEN)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"token": "wrong"}, "Jira refused the credentials"),
        ({"project": "NOPE"}, "project NOPE not found"),
        ({"url": "http://127.0.0.1:9"}, r"127\.0\.0\.1 could not be reached: nothing accepts connections"),
        ({"project": "no key"}, "is not a Jira project key"),
        ({"slug": "Not A Slug"}, "must be lower-case"),
        ({"url": "acme.atlassian.net"}, "must be an http"),
        ({"name": "N" * 201}, "--name: Ensure this value has at most 200"),
        ({"slug": "s" * 65}, "--slug: Ensure this value has at most 64"),
        ({"url": "https://" + "a" * 300 + ".net"}, "--jira-url: "),
        ({"email": "e" * 255}, "--jira-email: Ensure this value has at most 254"),
    ],
)
def test_create_tenant_failures_save_nothing(fake_jira, monkeypatch, no_tty, change, message):
    monkeypatch.setenv("JIRA_API_TOKEN", change.get("token", API_TOKEN))
    args = create_args(change.get("url", fake_jira.url), slug=change.get("slug", "globex"),
                       project=change.get("project", "FIN"))  # fmt: skip
    for option, flag in (("name", "--name"), ("email", "--jira-email")):
        if option in change:
            args[args.index(flag) + 1] = change[option]
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not Tenant.objects.exists() and not JiraSite.objects.exists() and not IssueMapping.objects.exists()


def test_create_tenant_duplicate_slug(fake_jira, tenant, monkeypatch, no_tty):
    monkeypatch.setenv("JIRA_API_TOKEN", API_TOKEN)
    with pytest.raises(CommandError, match="slug 'acme' already exists"):
        run(*create_args(fake_jira.url, slug="acme"))
    assert Tenant.objects.count() == 1 and not JiraSite.objects.exists()


def test_create_tenant_skip_check_creates_an_unchecked_site(monkeypatch, no_tty):
    monkeypatch.setenv("JIRA_API_TOKEN", API_TOKEN)
    run(*create_args("http://127.0.0.1:9"), "--skip-check")
    site = Tenant.objects.get(slug="globex").jira_site
    assert site.status == ConnectionStatus.DISCONNECTED and site.api_token == API_TOKEN


# --- check_connections -----------------------------------------------------------------------------------------


@pytest.fixture
def connected_by_oauth(tenant, fb_auth, fake_jira):
    return processing.connect(tenant, fb_auth, fake_jira)


def rows(out):
    return [line.split(None, 3) for line in out.splitlines() if line.startswith("acme")]


def test_check_connections_all_ok(connected_by_oauth, fb_auth, fake_jira):
    out, _ = run("check_connections")
    table = rows(out)
    assert table[0][:3] == ["acme", "freshbooks", "ok"] and "Acme Books" in table[0][3]
    assert table[1][:3] == ["acme", "jira", "ok"] and "Ops Bot" in table[1][3]
    assert table[2][:3] == ["acme", "jira", "ok"] and "project FIN: Task creatable" in table[2][3]
    assert out.splitlines()[0].split() == ["TENANT", "SIDE", "STATUS", "DETAIL"]
    assert "All 3 checks passed" in out
    # one identity call and one cheap read on FreshBooks; myself, project and createmeta on Jira
    assert len(fb_auth.calls("GET", "/auth/api/v1/users/me")) == 1
    assert fb_auth.calls("GET", "/users/clients")[0].query["per_page"] == ["1"]
    assert fake_jira.calls("GET", "/rest/api/3/issue/createmeta/FIN/issuetypes")


def test_check_connections_failure_table(connected_by_oauth, fb_auth, fake_jira, capsys):
    fb_auth.state["access_tokens"].clear()
    fb_auth.state["refresh_tokens"].clear()
    IssueMapping.objects.filter(event="bill.create").update(project_key="NOPE")
    IssueMapping.objects.filter(event="expense.create").update(issue_type="Story")
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("check_connections", "--tenant", "acme", stdout=out, stderr=err)
    assert exit_info.value.code == 1
    table = rows(out.getvalue())
    by_side = {(r[1], r[2]): r[3] for r in table}
    assert "connect again" in by_side[("freshbooks", "FAIL")]
    failures = [r[3] for r in table if r[1] == "jira" and r[2] == "FAIL"]
    assert any("project NOPE not found" in f for f in failures)
    assert any("Story cannot be created in FIN" in f for f in failures)
    assert "3 check(s) failed" in err.getvalue()
    account = FreshBooksAccount.objects.get()
    assert account.status == ConnectionStatus.NEEDS_RECONNECT and account.access_token == ACCESS_TOKEN


def test_check_connections_missing_connections(tenant, fb_auth):
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("check_connections", stdout=out, stderr=io.StringIO())
    table = rows(out.getvalue())
    assert ["acme", "freshbooks", "FAIL", "not connected"] in table
    assert ["acme", "jira", "FAIL", "no Jira site"] in table


def test_check_connections_unknown_tenant(db):
    with pytest.raises(CommandError, match="No tenant with slug 'nobody'"):
        run("check_connections", "--tenant", "nobody")


def test_admin_test_connection_action(connected_by_oauth, staff_client, fb_auth, fake_jira, tenant):
    other = Tenant.objects.create(name="Other", slug="other")
    response = staff_client.post(
        reverse("admin:tenants_tenant_changelist"),
        {"action": "test_connection", "_selected_action": [tenant.pk, other.pk]},
        follow=True,
    )
    found = {m.message: m.level_tag for m in get_messages(response.wsgi_request)} or {
        m.message: m.level_tag for m in response.context["messages"]
    }
    acme = next(text for text in found if text.startswith("Acme Corp"))
    assert found[acme] == "success" and "all checks passed" in acme
    other_text = next(text for text in found if text.startswith("Other"))
    assert found[other_text] == "error" and "no Jira site" in other_text
