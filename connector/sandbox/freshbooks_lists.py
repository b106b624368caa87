"""FreshBooks list routes for the fake FreshBooks: the records of ``fb.state["records"]`` (see
freshbooks_records), filtered on their update time and paged like FreshBooks.

- Accounting: ``GET /accounting/account/{account_id}/{resource}?page=&per_page=&search[updated_min]=`` →
  ``{"response": {"result": {"<plural>": [...], "page", "pages", "per_page", "total"}}}``; ``updated_min`` and
  the records' ``updated`` are US/Eastern "YYYY-MM-DD HH:MM:SS" (bills: ``updated_at``); ``include[]`` as for
  single records (freshbooks_records.served).
- Time entries: ``GET /timetracking/business/{business_id}/time_entries?page=&per_page=&updated_since=`` →
  ``{"time_entries": [...], "meta": {"page", "pages", "per_page", "total"}}``; ISO 8601 UTC, compared with the
  entry's ``updated_at`` (else ``created_at``).
``per_page`` is capped at 100 as FreshBooks does; records are in id order.
Failures: ``fb.state["list_errors"]`` is a list of HTTP statuses answered (and consumed) one per list call
before the real answer, e.g. ``[429, 503]``; a status paired with a page, ``(3, 500)``, waits for that page.
"""

import math
from datetime import datetime

from connector.freshbooks.client import ACCOUNTING_RESOURCES
from connector.sandbox.freshbooks import ACCOUNT_ID, BUSINESS_ID, unauthorized
from connector.sandbox.freshbooks_records import RESOURCE_KIND, served
from connector.sandbox.server import Response

MAX_PER_PAGE = 100


def _utc(text):
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def _injected_error(fb, page):
    with fb.lock:
        errors = fb.state.setdefault("list_errors", [])
        for index, error in enumerate(errors):
            wanted_page, status = error if isinstance(error, tuple) else (None, error)
            if wanted_page in (None, page):
                del errors[index]
                return Response(status, {"errno": status, "message": f"Injected failure {status}"})
    return None


def _page(request, records):
    page = max(1, int(request.arg("page", 1)))
    per_page = min(MAX_PER_PAGE, max(1, int(request.arg("per_page", 30))))
    pages = max(1, math.ceil(len(records) / per_page))
    found = records[(page - 1) * per_page : page * per_page]
    return found, {"page": page, "pages": pages, "per_page": per_page, "total": len(records)}


def _sorted(fb, kind):
    with fb.lock:
        found = list(fb.state.setdefault("records", {}).get(kind, {}).values())
    return sorted(found, key=lambda record: int(record.get("id") or 0))


def install_list_routes(fb):
    @fb.route("GET", r"/accounting/account/(?P<account>[^/]+)/(?P<resource>[a-z_]+/[a-z_]+)")
    def accounting_list(request):
        denied = unauthorized(fb, request)
        if denied:
            return denied
        kind, _ = RESOURCE_KIND.get(request.match["resource"], (None, None))
        if kind is None or request.match["account"] != fb.state.get("account_id", ACCOUNT_ID):
            return Response(404, {"response": {"errors": [{"errno": 1012, "message": "Not found."}]}})
        failure = _injected_error(fb, int(request.arg("page", 1)))
        if failure:
            return failure
        since = request.arg("search[updated_min]", "")
        records = [
            r for r in _sorted(fb, kind) if not since or str(r.get("updated") or r.get("updated_at")) >= since
        ]
        found, meta = _page(request, records)
        found = [served(fb, kind, dict(record), request.query.get("include[]", [])) for record in found]
        plural = ACCOUNTING_RESOURCES[kind][0].rsplit("/", 1)[1]
        return {"response": {"result": {plural: found, **meta}}}

    @fb.route("GET", r"/timetracking/business/(?P<business>\d+)/time_entries")
    def time_entries(request):
        denied = unauthorized(fb, request)
        if denied:
            return denied
        if request.match["business"] != fb.state.get("business_id", BUSINESS_ID):
            return Response(404, {"error": "Requested resource could not be found."})
        failure = _injected_error(fb, int(request.arg("page", 1)))
        if failure:
            return failure
        since = request.arg("updated_since")
        records = [
            r
            for r in _sorted(fb, "time_entry")
            if not since or _utc(r.get("updated_at") or r.get("created_at")) >= _utc(since)
        ]
        found, meta = _page(request, records)
        return {"time_entries": found, "meta": meta}

    return fb
