"""Rate-limit back-off: Retry-After is a minimum, 0 / missing / unparsable waits at least ~1 s and grows with
jitter, X-RateLimit-Reset is honoured, all within the per-call budget; FreshBooks' 429 too (research row 07:
seven POSTs in a quarter second, then a failed event)."""

import time
from datetime import UTC, datetime, timedelta

import pytest
import responses

from connector import retry
from connector.jira.client import JiraClient
from tests.connector.jira.test_client import API, ISSUE, Sleeps, site  # noqa: F401 - fixture
from tests.fakes.server import Response
from tests.processing import created_issues, issues, process

RATE_LIMITED = {"errorMessages": ["Rate limit exceeded."]}


def limited_for(server, method, path, seconds, headers):
    """Answer METHOD path with 429 for `seconds` from now, then as the fake normally does."""
    regex = path + r"\Z"
    original = next(f for m, r, f in server.routes if m == method and r.pattern == regex)
    until = time.monotonic() + seconds

    @server.route(method, path, first=True)
    def limited(request):
        if time.monotonic() < until:
            return Response(429, RATE_LIMITED, dict(headers))
        return original(request)


@pytest.mark.django_db
def test_a_3_second_rate_limit_with_retry_after_0_ends_in_one_issue_after_a_handful_of_requests(
    connected, fb, jira
):
    limited_for(jira, "POST", "/rest/api/3/issue", 3.0, {"Retry-After": "0"})
    started = time.monotonic()

    event = process(connected, "invoice.create", 987654)

    assert event.status == "succeeded", event.status_detail
    assert len(issues(jira)) == 1
    posts = jira.calls("POST", r"/rest/api/3/issue$")
    assert 2 <= len(posts) <= 5, len(posts)
    assert time.monotonic() - started >= 3.0


@pytest.mark.django_db
def test_freshbooks_429_is_waited_out_too(connected, fb, jira):
    limited_for(fb, "GET", r"/accounting/account/(?P<account>[^/]+)/(?P<resource>[a-z_]+/[a-z_]+)/(?P<id>[^/]+)",
                1.5, {"Retry-After": "0"})  # fmt: skip

    event = process(connected, "invoice.create", 987654)

    assert event.status == "succeeded", event.status_detail
    assert len(created_issues(jira)) == 1
    assert 2 <= len(fb.calls("GET", r"/invoices/invoices/987654$")) <= 4


@pytest.mark.parametrize("given", ["0", None, "soon", "-5", "nan"])
@responses.activate
def test_no_usable_retry_after_waits_at_least_a_second_and_grows(site, given):  # noqa: F811
    sleeps = Sleeps()
    headers = {"Retry-After": given} if given is not None else {}
    for _ in range(4):
        responses.post(f"{API}/issue", status=429, headers=headers, json=RATE_LIMITED)
    responses.post(f"{API}/issue", status=201, json={"id": "1", "key": "FIN-1"})

    assert JiraClient(site, sleep=sleeps).create_issue(ISSUE["fields"])["key"] == "FIN-1"

    assert len(sleeps) == 4 and all(s >= 1.0 for s in sleeps)
    assert all(later > earlier for earlier, later in zip(sleeps, sleeps[1:], strict=False))


@responses.activate
def test_x_ratelimit_reset_and_http_date_retry_after_are_minimums(site):  # noqa: F811
    sleeps = Sleeps()
    reset = (datetime.now(UTC) + timedelta(seconds=20)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    later = (datetime.now(UTC) + timedelta(seconds=40)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    responses.get(
        f"{API}/myself", status=429, headers={"Retry-After": "0", "X-RateLimit-Reset": reset}, json={}
    )
    responses.get(f"{API}/myself", status=429, headers={"Retry-After": later}, json={})
    responses.get(f"{API}/myself", json={"accountId": "a"})

    JiraClient(site, sleep=sleeps).myself()

    assert 18 <= sleeps[0] <= 21 and 38 <= sleeps[1] <= 41


def test_delay_is_capped():
    assert retry.call_delay(1, "3600") == retry.MAX_WAIT_SECONDS
    assert retry.call_delay(30) == retry.MAX_WAIT_SECONDS
    assert retry.call_delay(1, "0", budget=0.5) == 0.5  # never past the call's budget
