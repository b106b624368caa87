"""Jira's rate limits, class by class, against the fake's quota model (connector/sandbox/jira_quota.py): events
wait instead of failing, every worker sees a pause, API-token sites keep going, writes to one issue are paced."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from audit.models import Event
from connector import waiting
from connector.errors import MustWait
from connector.jira import quota
from connector.jira.client import JiraClient
from connector.models import QuotaState, QuotaUsage
from connector.sandbox.freshbooks_records import put
from connector.sandbox.jira import API_TOKEN, EMAIL, FakeJira, install_core_routes
from connector.sandbox.jira_issues import install_issue_routes
from connector.sandbox.jira_quota import Quota, install_quota
from connector.tasks import process_event
from tenants.models import ConnectionStatus, JiraSite, Tenant
from tests.processing import connect, connected_account, make_event

pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")
CLOUD_ID, ACCESS = "cloud-quota", "atl-access-quota"


class Clock:
    """Epoch seconds that move only when told (or when a client sleeps)."""

    def __init__(self, start):
        self.now = float(start)

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    found = Clock((int(time.time()) // 3600 + 1) * 3600 - 600)  # 10 minutes before the next top of the hour
    monkeypatch.setattr(quota, "clock", found)
    return found


def as_shown(moment):
    """A wait's end as events show it: the time, with the date when it is not today (UTC) — as at 23:50, when the
    clock's next top of the hour is tomorrow."""
    return f"{moment:%H:%M}" if moment.date() == datetime.now(UTC).date() else f"{moment:%Y-%m-%d %H:%M}"


def fake_jira(pool, **kwargs):
    return install_quota(install_issue_routes(install_core_routes(FakeJira(**kwargs))), pool)


@pytest.fixture
def pool(clock):
    return Quota(points=1000, clock=clock)


def warm_then_leave(pool, clock, tenant, left):
    """Process a first event (what is kept once asked, e.g. the issue type id, is asked then), then shrink the
    pool so that `left` points remain this hour."""
    process_event(make_event(tenant, "invoice.create", 99).pk)
    pool.points = pool.spent[pool.hour(clock())] + left


@pytest.fixture
def gateway(settings, pool):
    """Atlassian's gateway in front of one Jira Cloud site, for the OAuth app whose pool is `pool`."""
    jira = fake_jira(pool, cloud_id=CLOUD_ID, bearer_tokens={ACCESS})
    settings.ATLASSIAN_API_URL = jira.url
    yield jira
    jira.close()
    assert not jira.spec_errors, "\n".join(jira.spec_errors)


def oauth_tenant(slug, business_id):
    from connector.defaults import create_default_mappings

    tenant = Tenant.objects.create(name=slug.title(), slug=slug)
    connected_account(tenant, business_id=business_id)
    JiraSite.objects.create(
        tenant=tenant, base_url=f"https://{slug}.atlassian.net", cloud_id=CLOUD_ID,
        auth_method=JiraSite.AuthMethod.OAUTH2, access_token=ACCESS, refresh_token="atl-refresh",
        token_expires_at=timezone.now() + timedelta(hours=1), status=ConnectionStatus.CONNECTED,
    )  # fmt: skip
    create_default_mappings(tenant, "FIN")
    return tenant


@pytest.fixture(autouse=True)
def invoices(request):
    """Invoices 0-99 in the fake FreshBooks (when the test uses it)."""
    if "fb" not in request.fixturenames:
        return
    fb = request.getfixturevalue("fb")
    for n in range(100):
        put(fb, "invoice", {**fb.samples["invoice"], "id": n, "invoiceid": n})


def moment(epoch):
    return datetime.fromtimestamp(epoch, UTC)


def quota_429s(pool):
    return [entry for entry in pool.log if entry[3] == 429]


@pytest.mark.django_db
def test_a_spent_pool_pauses_every_oauth_tenant_and_their_events_wait_then_succeed_after_the_reset(
    fb, gateway, pool, clock, tenant
):
    """Auto retry off. The first worker meets the 429; the other tenant's worker (another client, seeing only
    the database) makes no call at all; both events wait, visibly, and succeed after the reset."""
    acme, beta = oauth_tenant("acme-oauth", "7001"), oauth_tenant("beta-oauth", "7002")
    assert not acme.auto_retry
    done = [make_event(acme, "invoice.create", n) for n in (1, 2, 3)]
    for event in done:
        process_event(event.pk)
    pool.exhaust()
    first, second = make_event(acme, "invoice.create", 4), make_event(beta, "invoice.create", 5)

    process_event(first.pk)
    calls_after_first = len(pool.log)
    process_event(second.pk)

    reset = moment((int(clock()) // 3600 + 1) * 3600)
    for event in (first, second):
        event.refresh_from_db()
        assert (event.status, event.wait_until, event.wait_reason) == ("waiting", reset, "Jira's quota")
        assert event.status_detail.startswith(f"Waiting for Jira's quota until {as_shown(reset)} UTC — ")
    assert len(quota_429s(pool)) == 1 and len(pool.log) == calls_after_first  # beta never called Jira
    assert QuotaState.objects.get(scope="pool:oauth").reason == "jira-quota-global-based"

    clock.advance(601)  # past the top of the hour: Jira's pool is full again
    assert waiting.release_due(now=moment(clock())) == [first.pk, second.pk]
    for event in (first, second):
        process_event(event.pk)
        event.refresh_from_db()
        assert event.status == "succeeded", event.status_detail
    assert Event.objects.filter(status="failed").count() == 0


@pytest.mark.django_db
def test_api_token_sites_keep_going_while_the_oauth_pool_is_paused(fb, gateway, pool, clock, tenant):
    oauth = oauth_tenant("acme-oauth", "7001")
    basic = fake_jira(pool)  # the same Jira, reached with an API token: not counted in points
    try:
        connect(tenant, fb, basic)
        pool.exhaust()
        paused = make_event(oauth, "invoice.create", 1)
        process_event(paused.pk)
        assert Event.objects.get(pk=paused.pk).status == "waiting"

        for n in (2, 3):
            event = make_event(tenant, "invoice.create", n)
            process_event(event.pk)
            event.refresh_from_db()
            assert event.status == "succeeded", event.status_detail
        assert len(basic.state["issues"]) == 2
    finally:
        basic.close()


@pytest.mark.django_db
def test_a_tenant_quota_pauses_that_site_only(fb, settings, clock, tenant):
    pool = Quota(points=1000, site_points=1000, clock=clock)
    jira = fake_jira(pool, cloud_id=CLOUD_ID, bearer_tokens={ACCESS})
    settings.ATLASSIAN_API_URL = jira.url
    try:
        acme = oauth_tenant("acme-oauth", "7001")
        process_event(make_event(acme, "invoice.create", 1).pk)
        pool.site_points = pool.spent[(id(jira), pool.hour(clock()))] + 1
        for n in (2, 3):
            process_event(make_event(acme, "invoice.create", n).pk)
        assert list(Event.objects.values_list("status", flat=True).order_by("id")) == [
            "succeeded", "succeeded", "waiting",
        ]  # fmt: skip
        site = JiraSite.objects.get(tenant=acme)
        assert QuotaState.objects.get(scope=f"site:{site.pk}").reason == "jira-quota-tenant-based"
        assert not QuotaState.objects.filter(scope="pool:oauth", until__isnull=False).exists()
    finally:
        jira.close()


@pytest.mark.django_db
def test_an_unknown_reason_counts_as_quota_the_event_waits(connected, jira, clock):
    jira.state["fail_next"] = [
        {"method": "POST", "path": r"/issue$", "status": 429,
         "headers": {"RateLimit-Reason": "jira-cost-based", "Retry-After": "1847"}},
    ]  # fmt: skip
    event = make_event(connected, "invoice.create", 1)
    process_event(event.pk)
    event.refresh_from_db()
    assert event.status == "waiting" and event.wait_reason == "Jira's quota"
    assert abs((event.wait_until - moment(clock() + 1847)).total_seconds()) < 1


@pytest.mark.django_db
def test_a_long_retry_after_defers_the_event_instead_of_failing_it(connected, jira, clock):
    """Old main: `Retry-After: 1800` → three POSTs inside the 120 s budget, then the event failed (auto retry
    off: it waited for a manual replay). Now: one POST, and the event waits until Jira's time, then succeeds."""
    jira.state["fail_next"] = [
        {"method": "POST", "path": r"/issue$", "status": 429, "headers": {"Retry-After": "1800"}},
    ]
    event = make_event(connected, "invoice.create", 1)
    process_event(event.pk)
    event.refresh_from_db()
    assert event.status == "waiting", event.status_detail
    assert event.wait_reason == "Jira's Retry-After" and len(jira.calls("POST", r"/issue$")) == 1
    assert abs((event.wait_until - moment(clock() + 1800)).total_seconds()) < 5

    clock.advance(1801)
    assert waiting.release_due(now=moment(clock())) == [event.pk]
    process_event(event.pk)
    event.refresh_from_db()
    assert (
        event.status == "succeeded"
        and len(jira.issues if hasattr(jira, "issues") else jira.state["issues"]) == 1
    )


def paced_worklogs(tenant, clock):
    """Two workers (two clients) add 150 worklogs to one issue: each 2 s and 30 s window stays within Jira's
    per-issue limits, with no 429. Returns (site, issue key)."""
    pool = Quota(clock=clock)
    jira = fake_jira(pool)
    try:
        site = JiraSite.objects.create(tenant=tenant, base_url=jira.url, email=EMAIL, api_token=API_TOKEN,
                                       status=ConnectionStatus.CONNECTED)  # fmt: skip
        key = JiraClient(site).create_issue(
            {"project": {"key": "FIN"}, "issuetype": {"name": "Task"}, "summary": "Team time"}
        )["key"]
        workers = [JiraClient(site, sleep=clock.advance), JiraClient(site, sleep=clock.advance)]
        body = {"started": "2026-12-01T09:00:00.000+0000", "timeSpentSeconds": 60}
        for n in range(150):
            workers[n % 2].add_worklog(key, body)
    finally:
        jira.close()
    writes = pool.writes[key]
    assert len(writes) == 150 and not quota_429s(pool)
    for start in writes:
        assert len([t for t in writes if start <= t < start + 2]) <= 20
        assert len([t for t in writes if start <= t < start + 30]) <= 100
    return site, key


@pytest.mark.django_db
def test_writes_to_one_issue_are_paced_within_jiras_per_issue_limits(tenant, clock):
    """Two workers sharing only the database."""
    paced_worklogs(tenant, clock)


@pytest.mark.django_db
def test_a_burst_429_slows_that_endpoint_and_method_only(tenant, clock):
    pool = Quota(clock=clock, burst={("POST", "issue"): 2})
    jira = fake_jira(pool)
    try:
        site = JiraSite.objects.create(tenant=tenant, base_url=jira.url, email=EMAIL, api_token=API_TOKEN,
                                       status=ConnectionStatus.CONNECTED)  # fmt: skip
        sleeps = []
        client = JiraClient(site, sleep=lambda s: (sleeps.append(s), clock.advance(s)))
        fields = {"project": {"key": "FIN"}, "issuetype": {"name": "Task"}, "summary": "x"}
        keys = [client.create_issue(fields)["key"] for _ in range(3)]  # the third meets the burst limit
        assert [entry[3] for entry in pool.log] == [201, 201, 429, 201] and sleeps and sleeps[0] >= 1
        slow = QuotaState.objects.get(scope=f"burst:{site.pk}:POST issue:slow")
        assert slow.reason == "jira-burst-based" and slow.until > moment(clock())
        sleeps.clear()
        assert client.get_issue(keys[0])["key"] == keys[0]  # GET issue/{id} is not slowed
        client.add_worklog(keys[0], {"started": "2026-12-01T09:00:00.000+0000", "timeSpentSeconds": 60})
        assert sleeps == []
    finally:
        jira.close()


@pytest.mark.django_db
def test_points_are_counted_per_tenant_and_pool_with_jiras_remaining_figure(fb, gateway, pool, clock):
    acme = oauth_tenant("acme-oauth", "7001")
    warm_then_leave(pool, clock, acme, 5)
    for n in (1, 2, 3, 4):
        process_event(make_event(acme, "invoice.create", n).pk)
    usage = QuotaUsage.objects.get(tenant=acme, pool="oauth")
    assert usage.points == pool.spent[pool.hour(clock())] and usage.requests >= 5
    assert usage.hour == moment(int(clock()) // 3600 * 3600)
    kept = QuotaState.objects.get(scope="pool:oauth")
    assert (kept.remaining, kept.limit) == (pool.left(), pool.points)  # sent by Jira once below 20% left


@pytest.mark.django_db
def test_below_a_fifth_left_bulk_work_waits_for_the_reset_and_live_work_goes_on(fb, gateway, pool, clock):
    acme = oauth_tenant("acme-oauth", "7001")
    warm_then_leave(pool, clock, acme, 5)
    for n in (1, 2, 3, 4):
        process_event(make_event(acme, "invoice.create", n).pk)
    assert pool.left() == 1
    bulk = Event.objects.create(tenant=acme, source="reconcile", name="invoice.create", object_id="6",
                                account_id=make_event(acme, "x", 0).account_id, status="queued")  # fmt: skip
    process_event(bulk.pk)
    bulk.refresh_from_db()
    assert bulk.status == "waiting" and "below 20%" in bulk.status_detail
    live = make_event(acme, "invoice.create", 7)
    process_event(live.pk)
    assert Event.objects.get(pk=live.pk).status == "succeeded"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Beta-RateLimit-Policy": '"global-app-quota";q=65000;w=3600',
          "Beta-RateLimit": '"global-app-quota";r=11000;t=600'},
         {"global-app-quota": {"q": 65000, "w": 3600, "r": 11000, "t": 600}}),
        ({"RateLimit": '"tenant-app-quota";t=2788;r=0', "Beta-RateLimit-Policy": '"tenant-app-quota";q=100100;w=3600'},
         {"tenant-app-quota": {"q": 100100, "w": 3600, "r": 0, "t": 2788}}),
        ({"Beta-RateLimit-Policy": '"global-app-quota";q=65000;w=3600, "jira-burst-based";q=100;w=1'},
         {"global-app-quota": {"q": 65000, "w": 3600}, "jira-burst-based": {"q": 100, "w": 1}}),
        ({"Beta-RateLimit": '"global-app-quota";r=abc;t=5'}, {"global-app-quota": {"t": 5}}),
        ({}, {}),
    ],
)  # fmt: skip
def test_quota_headers_are_read_in_any_order_mix_and_prefix(headers, expected):
    assert quota.parse_policies(headers) == expected


@pytest.mark.parametrize(
    ("reason", "kind"),
    [("jira-quota-global-based", "quota"), ("jira-quota-tenant-based", "quota"), ("jira-cost-based", "quota"),
     ("jira-burst-based", "burst"), ("", "burst"), ("jira-per-issue-on-write", "per_issue")],
)  # fmt: skip
def test_each_429_reason_has_its_class(reason, kind):
    assert quota.classify(reason) == kind


def test_cost_follows_jiras_points_model():
    assert quota.cost("POST", 201, {"id": "1"}) == 1
    assert quota.cost("GET", 200, {"issues": [{}, {}, {}], "nextPageToken": "x"}) == 4
    assert quota.cost("GET", 200, {"id": "1", "key": "FIN-1"}) == 2
    assert quota.cost("GET", 200, [{}, {}]) == 3
    assert quota.cost("GET", 404, {"errorMessages": []}) == 1


def test_must_wait_is_never_a_failure():
    error = MustWait("x", until=timezone.now(), reason=waiting.QUOTA)
    assert error.transient and not error.ambiguous


@pytest.mark.django_db
def test_the_health_panel_shows_points_spent_and_the_pause_while_events_wait(
    fb, gateway, pool, clock, staff_client
):
    acme = oauth_tenant("acme-oauth", "7001")
    warm_then_leave(pool, clock, acme, 5)
    for n in (1, 2, 3, 4, 5, 6):
        process_event(make_event(acme, "invoice.create", n).pk)
    assert Event.objects.filter(status="waiting").count() == 1
    reset = moment((int(clock()) // 3600 + 1) * 3600)
    page = staff_client.get("/admin/").content.decode()
    assert (
        f"Jira's OAuth pool this hour:\n        {pool.points} points spent, Jira reports 0 of {pool.points} left"
        in page
    )
    assert f"paused until {reset:%H:%M} UTC (jira-quota-global-based)</strong>: events wait" in page
    row = page.split('data-tenant="acme-oauth"')[1].split("</tr>")[0]
    assert f"{pool.points} (oauth)" in row and f"waiting for Jira's quota until {reset:%H:%M} UTC" in row
