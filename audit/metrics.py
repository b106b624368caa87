"""Prometheus metrics (prometheus_client), served at GET /metrics in the Prometheus text format.

Counters and the histogram are counted where things happen — in gunicorn workers (deliveries, by the inbound
endpoint base) and in the qcluster worker processes (events, vendor calls through connector.http's hook,
latency, reconcile) — in prometheus_client's multiprocess
mode: every process writes its values to files in PROMETHEUS_MULTIPROC_DIR (set up by config.settings before
this module is imported), and a scrape, answered by any web process, adds up the files of all processes on
the host. The queue gauges are read from the database at scrape time, so they are right whichever process
answers. https://prometheus.github.io/client_python/multiprocess/

Names (all prefixed `mlc_`; counters end in `_total` in the exposition):
- mlc_deliveries_total{source, result, reason}: inbound webhook deliveries; result accepted | rejected | error,
  reason the refusal (malformed, signature, inactive_tenant, unknown_sender, too_large, media_type, method …).
- mlc_events_total{kind, status}: events that finished processing, by FreshBooks/Jira kind and final status.
- mlc_vendor_calls_total{vendor, status}: outbound calls made for events (reported by connector.http's hook)
  to jira / freshbooks by HTTP status ("error": no answer).
- mlc_delivery_to_jira_write_seconds: histogram, from an event's delivery to its first Jira write.
- mlc_alerts_total{kind}: alerts raised (audit.alerts), one per tenant, kind, subject and hour.
- mlc_jira_points_total{pool, tenant}: Jira points spent, estimated per call (connector.jira.quota); the hourly
  figure per tenant is on the health panel. mlc_jira_quota_pauses_total{scope}: quota 429s that paused calls.
- mlc_reconcile_passes_total{result}, mlc_reconcile_events_found_total: reconcile passes (see `reconcile_pass`).
- mlc_queue_backlog, mlc_queue_oldest_age_seconds, mlc_broker_backlog: read at scrape time.

Every label value comes from a fixed list (`label`): a value a sender or vendor chose that is not on it counts
as "other", so invented event names or odd HTTP statuses never create new series.
"""

import hmac
import ipaddress
import logging
import os

from django.conf import settings
from django.http import HttpResponse, HttpResponseForbidden
from django.utils import timezone
from django.views.decorators.http import require_GET
from django_q.brokers import get_broker
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from audit.backlog import queued_backlog
from audit.models import Event
from connector.kinds import KINDS

log = logging.getLogger(__name__)

DELIVERIES = Counter(
    "mlc_deliveries",
    "Inbound webhook deliveries by source, result and reason.",
    ["source", "result", "reason"],
)
EVENTS = Counter(
    "mlc_events", "Events that finished processing, by kind and final status.", ["kind", "status"]
)
VENDOR_CALLS = Counter(
    "mlc_vendor_calls", "Outbound calls to Jira and FreshBooks by status.", ["vendor", "status"]
)
DELIVERY_TO_JIRA = Histogram(
    "mlc_delivery_to_jira_write_seconds",
    "Seconds from an event's delivery to its first Jira write.",
    buckets=(0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600),
)
ALERTS = Counter(
    "mlc_alerts", "Alerts raised (first occurrence per tenant, kind, subject and hour).", ["kind"]
)
RECONCILE_PASSES = Counter("mlc_reconcile_passes", "Reconcile passes by result (ok, failed).", ["result"])
RECONCILE_FOUND = Counter("mlc_reconcile_events_found", "Events created by reconcile for missed records.")
JIRA_POINTS = Counter(
    "mlc_jira_points",
    "Jira points spent (estimated from Jira's cost model), by pool (oauth, api_token, data_center) and tenant.",
    ["pool", "tenant"],
)
JIRA_QUOTA_PAUSES = Counter(
    "mlc_jira_quota_pauses",
    "Quota 429s that paused Jira calls, by scope (pool: every OAuth site; site).",
    ["scope"],
)

# Why an inbound endpoint refused a delivery, by HTTP status (the endpoints' documented answers).
REASONS = {
    400: "malformed",
    401: "signature",
    403: "inactive_tenant",
    404: "unknown_sender",
    405: "method",
    408: "timeout",
    409: "unverified_callback",
    413: "too_large",
    415: "media_type",
    429: "throttled",
    503: "unconfirmed",
}
OTHER = "other"
# The Jira deliveries the connector acts on (connector.jira.inbound.EVENT_HANDLERS; a test keeps them equal).
JIRA_EVENTS = ("jira:issue_deleted", "jira:issue_updated", "worklog_deleted")
EVENT_KINDS = (*KINDS, *JIRA_EVENTS)
# Vendor HTTP statuses counted as themselves; any other counts as its class ("2xx" … "5xx") or "other".
HTTP_STATUSES = {200, 201, 204, 400, 401, 403, 404, 409, 410, 413, 422, 429, 500, 502, 503, 504}
HTTP_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


def label(value, allowed):
    """`value` as a metric label when it is one of `allowed` (a fixed list), else "other"."""
    value = str(value)
    return value if value in allowed else OTHER


def event_kind(name):
    """The kind label of an event name: the FreshBooks kind ("invoice" for invoice.create), a Jira event the
    connector acts on, else "other"."""
    name = str(name or "")
    return label(name.split(".", 1)[0] if "." in name else name, EVENT_KINDS)


def http_status(status):
    """A vendor answer's status label: a common status itself, else its class, "error" for no answer."""
    if not status:
        return "error"
    if status in HTTP_STATUSES:
        return str(status)
    return label(f"{int(status) // 100}xx", HTTP_CLASSES)


def count_delivery(source, status_code):
    """Count one answer of an inbound webhook endpoint in mlc_deliveries_total{source, result, reason}."""
    if status_code < 300:
        result, reason = "accepted", "ok"
    elif status_code < 500:
        result, reason = "rejected", REASONS.get(status_code, OTHER)
    else:
        result, reason = "error", REASONS.get(status_code, OTHER)
    DELIVERIES.labels(label(source, ("freshbooks", "jira")), result, reason).inc()


def event_finished(event):
    """Count an event's final status (queued-for-retry is not final)."""
    if event.status not in ("queued", "received", "processing"):
        EVENTS.labels(event_kind(event.name), label(event.status, Event.Status.values)).inc()


def count_call(call):
    """connector.http hook: count one outbound call made for an event (a connector.http.Call); the first
    successful Jira write of a delivery's processing by the worker observes its delivery-to-Jira latency (not a
    replay's, a rollback's or a reconcile's: their time since the delivery says nothing about the pipeline)."""
    url, method, status = call.request.get("url", ""), call.request.get("method", ""), call.http_status
    vendor = vendor_of(url)
    VENDOR_CALLS.labels(vendor, http_status(status)).inc()
    event = call.event
    is_write = vendor == "jira" and method.upper() != "GET" and status and 200 <= status < 300
    if is_write and is_delivery(call) and not getattr(event, "_mlc_wrote", False):
        event._mlc_wrote = True
        DELIVERY_TO_JIRA.observe(max(0.0, (timezone.now() - event.received_at).total_seconds()))


def is_delivery(call):
    """The call is the worker processing a FreshBooks delivery that nobody asked to replay."""
    event = call.event
    return (
        call.actor == "worker"
        and getattr(event, "source", None) == "freshbooks"
        and getattr(event, "received_at", None) is not None
        and getattr(event, "replay_requested_at", None) is None
    )


def vendor_of(url):
    """ "freshbooks" for FreshBooks' API and auth hosts, else "jira" (Jira sites and Atlassian's gateway)."""
    if url.startswith((settings.FRESHBOOKS_API_URL + "/", settings.FRESHBOOKS_AUTH_URL + "/")):
        return "freshbooks"
    return "jira"


def jira_points(pool, tenant, points):
    """Count `points` spent by tenant (slug) in pool (oauth, api_token, data_center)."""
    JIRA_POINTS.labels(pool, tenant).inc(points)


def jira_quota_pause(scope):
    JIRA_QUOTA_PAUSES.labels(scope).inc()


def reconcile_pass(ok, found):
    """Count one (not dry-run) reconcile pass of a tenant, with its result and the number of events it created;
    called by connector.reconcile (tests/connector/test_reconcile.py checks the counters)."""
    RECONCILE_PASSES.labels("ok" if ok else "failed").inc()
    RECONCILE_FOUND.inc(found)


class QueueCollector:
    """Queue gauges read from the database (and the django-q broker) at scrape time."""

    def collect(self):
        count, age = queued_backlog()
        yield GaugeMetricFamily("mlc_queue_backlog", "Events queued for processing.", value=count)
        yield GaugeMetricFamily(
            "mlc_queue_oldest_age_seconds", "Age of the oldest queued event in seconds (0: none).", value=age
        )
        try:
            broker = get_broker().queue_size()
        except Exception:  # a broker (Redis) outage must not break the scrape of everything else
            log.warning("Broker queue size unavailable for /metrics", exc_info=True)
        else:
            yield GaugeMetricFamily(
                "mlc_broker_backlog", "Tasks waiting in the django-q broker.", value=broker
            )


FORWARDING_HEADERS = (
    "X-Forwarded-For",
    "X-Forwarded-Proto",
    "X-Forwarded-Host",
    "Forwarded",
    "Via",
    "X-Real-Ip",
)


def _address(text):
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def _in(address, networks):
    return address is not None and any(address in network for network in networks)


def client_address(request):
    """The address that asked, and whether a proxy forwarded the request (any forwarding header).

    Forwarded through METRICS_TRUSTED_PROXIES: the client is the right-most X-Forwarded-For address that is
    not a trusted proxy (each proxy appends the address it received from). Forwarded otherwise: None — the
    peer is a proxy and the headers could be anyone's."""
    peer = _address(request.META.get("REMOTE_ADDR", ""))
    forwarded = any(header in request.headers for header in FORWARDING_HEADERS)
    if not forwarded:
        return peer, False
    trusted = settings.METRICS_TRUSTED_PROXIES
    if not _in(peer, trusted):
        return None, True
    for hop in reversed(request.headers.get("X-Forwarded-For", "").split(",")):
        address = _address(hop)
        if address is None:
            return None, True
        if not _in(address, trusted):
            return address, True
    return None, True


def allowed(request):
    """Bearer token (constant-time); METRICS_ALLOWED_IPS for the real client (see client_address); or
    loopback not forwarded by a proxy."""
    token = settings.METRICS_BEARER_TOKEN
    given = request.headers.get("Authorization", "")
    if token and given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), token.encode()):
        return True
    address, forwarded = client_address(request)
    if address is None:
        return False
    if _in(address, settings.METRICS_ALLOWED_IPS):
        return True
    return settings.METRICS_ALLOW_LOOPBACK and address.is_loopback and not forwarded


@require_GET
def metrics_view(request):
    """GET /metrics: Prometheus text exposition of every process's metrics, or 403."""
    if not allowed(request):
        return HttpResponseForbidden(
            "Forbidden: /metrics is open to loopback, METRICS_ALLOWED_IPS or a token.\n"
        )
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=os.environ["PROMETHEUS_MULTIPROC_DIR"])
    registry.register(QueueCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
