"""The one vendor transport (connector.transport): every vendor call goes through it, and its response contract.

Unit tests at the network edge (`responses`) for both vendor clients, and one behavioural check against the
loopback fakes that every request sent while an event is processed went through the transport.
"""

import ast
from pathlib import Path

import pytest
import responses

from connector import http, transport
from connector.errors import FreshBooksError, JiraError
from connector.freshbooks.client import FreshBooksClient
from connector.jira.client import JiraClient
from tenants.models import ConnectionStatus, JiraSite
from tests.processing import connected_account, process

ROOT = Path(__file__).resolve().parents[2]
BASE = "https://jira.example.com"
API2 = f"{BASE}/rest/api/2"
FB = "https://api.freshbooks.test"
WORKLOG = {"started": "2026-01-05T09:00:00.000+0000", "timeSpentSeconds": 3600}
LOGIN_PAGE = "<!DOCTYPE html><html><head><title>Log in - Jira</title></head><body><form></form></body></html>"

# Modules allowed to send HTTP themselves: the transport and the layer under it; the token endpoints, which
# requests-oauthlib drives (tenants.oauth: redirects refused there too); the sandbox, which is the vendors.
SENDERS = {"connector/http.py", "connector/transport.py", "tenants/oauth.py"}
SENDING_NAMES = {"request", "get", "post", "put", "delete", "patch", "head", "send", "urlopen", "Session"}
HTTP_MODULES = {"requests", "urllib3", "httpx", "urllib.request", "http.client", "aiohttp"}


def product_modules():
    for package in ("config", "connector", "tenants", "audit"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/" in relative or relative.startswith("connector/sandbox/"):
                continue
            yield relative, ast.parse(path.read_text(), relative)


def _sending_import(node):
    """An import that can send HTTP (requests' exception types and auth classes cannot)."""
    if isinstance(node, ast.ImportFrom):
        if node.module in ("requests.auth", "requests.exceptions"):
            return False
        names = [node.module or ""]
    else:
        names = [alias.name for alias in node.names]
    return any(name == m or name.startswith(f"{m}.") for name in names for m in HTTP_MODULES)


def direct_senders(tree):
    """Lines that could send HTTP outside the transport: calls of connector.http.send, requests.*, a session's
    request methods, urlopen; and imports of an HTTP library whose names are then called."""
    found = []
    for node in ast.walk(tree):
        # `import requests` alone is fine (its exception classes); its calls are caught below.
        bare_requests = isinstance(node, ast.Import) and [a.name for a in node.names] == ["requests"]
        if isinstance(node, ast.Import | ast.ImportFrom) and _sending_import(node) and not bare_requests:
            found.append(node.lineno)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if (
                node.func.attr in SENDING_NAMES
                and isinstance(owner, ast.Name)
                and owner.id in {"http", "requests", "session", "_session"}
            ):
                found.append(node.lineno)
    return sorted(found)


def test_no_product_module_sends_http_outside_the_transport():
    offenders = {
        name: lines
        for name, tree in product_modules()
        if name not in SENDERS and (lines := direct_senders(tree))
    }
    assert offenders == {}, f"send vendor calls through connector.transport.VendorClient: {offenders}"


def test_the_guard_sees_a_direct_call():
    tree = ast.parse(
        "import requests\nimport urllib.request\nfrom connector import http\nhttp.send('GET', 'x')\n"
        "requests.get('x')\nrequests.Session()\nfrom urllib.parse import urlsplit\n"
    )
    assert direct_senders(tree) == [2, 4, 5, 6]


def test_both_vendor_clients_are_transport_clients():
    assert issubclass(JiraClient, transport.VendorClient)
    assert issubclass(FreshBooksClient, transport.VendorClient)
    assert "request" not in vars(JiraClient) and "request" not in vars(FreshBooksClient)


def test_every_request_of_an_event_goes_through_the_transport(connected, fb, jira, monkeypatch):
    """Behavioural: while an invoice is processed (FreshBooks fetch, Jira search and create), every request
    that reaches the network was sent by VendorClient.request."""
    sent, through = [], []
    real_send, real_request = http.send, transport.VendorClient.request
    inside = []

    def spy_send(method, url, **kwargs):
        sent.append((method, url, bool(inside)))
        return real_send(method, url, **kwargs)

    def spy_request(self, *args, **kwargs):
        inside.append(1)
        through.append(args[:2])
        try:
            return real_request(self, *args, **kwargs)
        finally:
            inside.pop()

    monkeypatch.setattr(http, "send", spy_send)
    monkeypatch.setattr(transport.VendorClient, "request", spy_request)
    event = process(connected, "invoice.create", 987654)
    assert event.status == "succeeded", event.status_detail
    assert sent and all(was_inside for _method, _url, was_inside in sent), sent
    assert {url.split("/")[2] for _m, url, _i in sent} == {fb.url.split("/")[2], jira.url.split("/")[2]}


# --- the response contract: redirects -------------------------------------------------------------------------


@pytest.fixture
def dc_site(tenant):
    return JiraSite.objects.create(
        tenant=tenant,
        base_url=BASE,
        deployment=JiraSite.Deployment.SERVER,
        email="ops",
        api_token="tok",
        status=ConnectionStatus.CONNECTED,
    )


@responses.activate
def test_a_worklog_post_redirected_under_a_context_path_fails_naming_the_new_location(dc_site):
    """Data Center moved under /jira: the POST is not re-sent as a GET (whose worklog list would be read as the
    create's answer); the error names the new location and what to do."""
    responses.post(
        f"{API2}/issue/FIN-7/worklog",
        status=301,
        headers={"Location": "/jira/rest/api/2/issue/FIN-7/worklog"},
    )
    responses.get(f"{BASE}/jira/rest/api/2/issue/FIN-7/worklog", json={"worklogs": [], "total": 0})
    with pytest.raises(JiraError) as raised:
        JiraClient(dc_site, sleep=lambda s: None).add_worklog("FIN-7", WORKLOG)
    assert len(responses.calls) == 1
    assert "301" in str(raised.value) and f"{BASE}/jira/rest/api/2/issue/FIN-7/worklog" in str(raised.value)
    assert "update the Jira site URL" in str(raised.value)
    assert not raised.value.transient and not raised.value.ambiguous


@responses.activate
def test_a_site_renamed_to_another_host_is_not_followed_with_the_credentials(dc_site):
    responses.get(
        f"{API2}/myself", status=302, headers={"Location": "https://new.example.com/rest/api/2/myself"}
    )
    responses.get("https://new.example.com/rest/api/2/myself", status=401, json={})
    with pytest.raises(JiraError, match=r"302 redirect to https://new\.example\.com/rest/api/2/myself"):
        JiraClient(dc_site, sleep=lambda s: None).myself()
    assert [call.request.url for call in responses.calls] == [f"{API2}/myself"]
    assert JiraSite.objects.get(pk=dc_site.pk).status == ConnectionStatus.CONNECTED  # not blamed on the token


@responses.activate
def test_a_freshbooks_redirect_fails_naming_the_location(settings, tenant):
    settings.FRESHBOOKS_API_URL = FB
    account = connected_account(tenant)
    responses.get(
        f"{FB}/timetracking/business/6543/time_entries/5", status=307, headers={"Location": "/maint"}
    )
    responses.get(f"{FB}/maint", json={"time_entry": {"id": 5}})
    with pytest.raises(FreshBooksError, match=r"307 redirect to https://api\.freshbooks\.test/maint"):
        FreshBooksClient(account, sleep=lambda s: None).get_time_entry(5)
    assert len(responses.calls) == 1


# --- the response contract: a 2xx that is not the JSON asked for -----------------------------------------------


@responses.activate
def test_a_create_answered_with_a_login_page_is_in_doubt(dc_site):
    """Data Center behind SSO: 200 text/html on a create is no answer: in doubt, so the ledger looks first."""
    responses.post(f"{API2}/issue", body=LOGIN_PAGE, content_type="text/html")
    with pytest.raises(JiraError) as raised:
        JiraClient(dc_site, sleep=lambda s: None).create_issue({"summary": "x"})
    assert raised.value.ambiguous and raised.value.transient and raised.value.status == 200
    assert "text/html" in str(raised.value) and "Error" not in raised.value.detail


@responses.activate
def test_a_login_page_on_a_get_is_never_read_as_absent(dc_site):
    responses.get(f"{API2}/issue/FIN-7", body=LOGIN_PAGE, content_type="text/html")
    with pytest.raises(JiraError) as raised:
        JiraClient(dc_site, sleep=lambda s: None).get_issue("FIN-7")
    assert raised.value.transient and not raised.value.ambiguous


@responses.activate
def test_a_login_page_on_the_ledger_search_is_not_an_empty_result(dc_site):
    """The ledger's look-up of an in-doubt create: an HTML answer must not read as "nothing there" (which
    would let the create be sent twice)."""
    responses.get(f"{API2}/search", body=LOGIN_PAGE, content_type="text/html")
    with pytest.raises(JiraError):
        JiraClient(dc_site, sleep=lambda s: None).search_jql('labels = "x"')


@responses.activate
def test_an_empty_200_from_freshbooks_is_a_failure_not_an_empty_record(settings, tenant):
    settings.FRESHBOOKS_API_URL = FB
    account = connected_account(tenant)
    responses.get(f"{FB}/timetracking/business/6543/time_entries/5", body="", status=200)
    with pytest.raises(FreshBooksError) as raised:
        FreshBooksClient(account, sleep=lambda s: None).get_time_entry(5)
    assert raised.value.transient and "empty answer" in str(raised.value)


@responses.activate
def test_an_empty_204_is_accepted_where_expected(dc_site):
    responses.put(f"{API2}/issue/FIN-7", status=204)
    responses.delete(f"{API2}/issue/FIN-7", status=204)
    client = JiraClient(dc_site, sleep=lambda s: None)
    assert client.update_issue("FIN-7", {"summary": "y"}) is None
    assert client.delete_issue("FIN-7") is True
