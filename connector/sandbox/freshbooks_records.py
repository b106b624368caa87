"""FreshBooks record routes for the fake FreshBooks: single GETs with FreshBooks' envelopes and error shapes.

State: ``fb.state["records"][kind][str(id)] = record`` for kinds invoice, payment, expense, expense_category,
client, bill, bill_vendor (accounting: ``/accounting/account/{account_id}/…``, envelope
``{"response": {"result": {"<key>": record}}}``), time_entry and project (``/timetracking/business/{id}/…`` and
``/projects/business/{id}/…``, bare envelopes). Included parts come only when asked, as FreshBooks serves them
(``served``): an invoice's ``lines`` with ``include[]=lines``, an expense's ``category`` with
``include[]=category``; a client asking for neither gets the record without them.
Unknown ids answer 404 in FreshBooks' shape for that API family. Requests need a bearer token the fake issued.

Helpers: ``put(fb, kind, record)`` stores a record under its id, ``get(fb, kind, id)`` reads a copy.
"""

import copy

from connector.freshbooks.client import ACCOUNTING_RESOURCES
from connector.sandbox.freshbooks import ACCOUNT_ID, BUSINESS_ID, unauthorized
from connector.sandbox.server import Response

RESOURCE_KIND = {resource: (kind, key) for kind, (resource, key) in ACCOUNTING_RESOURCES.items()}


def record_id(kind, record):
    if kind == "bill_vendor":
        return str(record.get("vendorid") or record.get("id"))
    if kind == "expense_category":
        return str(record.get("categoryid") or record.get("id"))
    return str(record["id"])


def put(fb, kind, record):
    """Store a (copied) record; returns the copy, which tests may change in place."""
    record = copy.deepcopy(record)
    with fb.lock:
        fb.state.setdefault("records", {}).setdefault(kind, {})[record_id(kind, record)] = record
    return record


def get(fb, kind, object_id):
    with fb.lock:
        found = fb.state.setdefault("records", {}).get(kind, {}).get(str(object_id))
        return copy.deepcopy(found)


def served(fb, kind, record, includes):
    """The record as FreshBooks answers for `includes` (the request's ``include[]`` values): included parts
    removed unless asked for (an expense's category is embedded from the stored categories)."""
    if kind == "invoice" and "lines" not in includes:
        record.pop("lines", None)
    if kind == "expense":
        record.pop("category", None)
        if "category" in includes:
            record["category"] = get(fb, "expense_category", record.get("categoryid"))
    return record


def accounting_not_found(kind, object_id):
    return Response(
        404,
        {
            "response": {
                "errors": [
                    {
                        "errno": 1012,
                        "field": "id",
                        "message": f"The requested {kind} could not be found.",
                        "object": kind,
                        "value": str(object_id),
                    }
                ]
            }
        },
    )


def install_record_routes(fb):
    fb.state.setdefault("records", {})

    @fb.route("GET", r"/accounting/account/(?P<account>[^/]+)/(?P<resource>[a-z_]+/[a-z_]+)/(?P<id>[^/]+)")
    def accounting(request):
        denied = unauthorized(fb, request)
        if denied:
            return denied
        kind, key = RESOURCE_KIND.get(request.match["resource"], (None, None))
        if kind is None or request.match["account"] != fb.state.get("account_id", ACCOUNT_ID):
            return accounting_not_found(kind or "resource", request.match["id"])
        record = get(fb, kind, request.match["id"])
        if record is None:
            return accounting_not_found(key, request.match["id"])
        record = served(fb, kind, record, request.query.get("include[]", []))
        return {"response": {"result": {key: record}}}

    @fb.route("GET", r"/timetracking/business/(?P<business>\d+)/time_entries/(?P<id>\d+)")
    def time_entry(request):
        denied = unauthorized(fb, request)
        if denied:
            return denied
        record = get(fb, "time_entry", request.match["id"])
        if record is None or request.match["business"] != fb.state.get("business_id", BUSINESS_ID):
            return Response(404, {"error": "Requested resource could not be found."})
        return {"time_entry": record}

    @fb.route("GET", r"/projects/business/(?P<business>\d+)/project/(?P<id>\d+)")
    def project(request):
        denied = unauthorized(fb, request)
        if denied:
            return denied
        record = get(fb, "project", request.match["id"])
        if record is None or request.match["business"] != fb.state.get("business_id", BUSINESS_ID):
            return Response(404, {"error": "Requested resource could not be found."})
        return {"project": record, "abilities": []}

    return fb
