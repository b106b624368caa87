"""Fakes for throughput runs: the test fakes (tests/fakes) with every invoice id answered from the vendor
sample, and optionally without the Jira OpenAPI validation (it costs ~10 ms a request; the tests keep it on).

`FaultyJira` fails a share of calls the ways Jira does: 5xx, a read timeout, 429 with Retry-After, and 5xx after
the write was applied (the ambiguous case); `state["faults"]` counts what it injected.
"""

import random
import threading
import time

from tests.fakes import jira as fake_jira
from tests.fakes.freshbooks import make_fake_freshbooks
from tests.fakes.freshbooks_records import install_fixture_records, install_record_routes
from tests.fakes.jira import FakeJira, install_core_routes
from tests.fakes.jira_issues import install_issue_routes


def fast_freshbooks():
    """The fake FreshBooks whose invoice routes answer any id with the sample invoice under that id."""
    fb = make_fake_freshbooks()
    install_record_routes(fb)
    sample = install_fixture_records(fb)["invoice"]

    @fb.route("GET", r"/accounting/account/[^/]+/invoices/invoices/(?P<id>\d+)", first=True)
    def invoice(request):
        return {"response": {"result": {"invoice": {**sample, "id": int(request.match["id"]),
                                                    "invoiceid": int(request.match["id"])}}}}  # fmt: skip

    return fb


class FaultyJira(FakeJira):
    KINDS = ("5xx", "timeout", "429", "5xx-applied")

    def __init__(self, rate=0.0, timeout_seconds=1.5, seed=15):
        super().__init__()
        self.rate, self.timeout_seconds = rate, timeout_seconds
        self.random = random.Random(seed)
        self.random_lock = threading.Lock()
        self.state["faults"] = dict.fromkeys(self.KINDS, 0)

    def take_failure(self, request):
        queued = super().take_failure(request)
        if queued is not None or not self.rate or not request.path.startswith("/rest/api/3/issue"):
            return queued
        with self.random_lock:
            if self.random.random() >= self.rate:
                return None
            kind = self.random.choice(self.KINDS)
        with self.lock:
            self.state["faults"][kind] += 1
        if kind == "timeout":
            time.sleep(self.timeout_seconds)  # past the worker's read timeout: it gave up waiting
            return {"status": 504}
        if kind == "429":
            return {"status": 429, "headers": {"Retry-After": "1"}}
        return {"status": 503, "apply": kind == "5xx-applied"}


def fast_jira(validate=False, rate=0.0):
    """A fake Jira Cloud; validate=False turns off the OpenAPI check of requests (in this process)."""
    if not validate:
        fake_jira.validate = lambda request, path: None
    return install_issue_routes(install_core_routes(FaultyJira(rate=rate)))


def issues_by_object(jira):
    """{invoice object id: number of issues the connector created for it}."""
    counts = {}
    with jira.lock:
        for issue in jira.state["issues"].values():
            marker = issue["properties"].get("ml-connector") or {}
            if marker.get("object_id"):
                counts[marker["object_id"]] = counts.get(marker["object_id"], 0) + 1
    return counts


def created_at(jira):
    """{invoice object id: time.time() when its (first) issue was created}."""
    found = {}
    with jira.lock:
        for issue in jira.state["issues"].values():
            marker = issue["properties"].get("ml-connector") or {}
            if marker.get("object_id"):
                found.setdefault(marker["object_id"], issue["created"])
    return found
