"""Fake FreshBooks callbacks API (list/create/get/put/delete) and helpers that build webhook deliveries.

State in `fb.state["callbacks"]`: callback id → {"callbackid", "account_id", "event", "uri", "verified",
"verifier", "updated_at"}. A created callback is unverified and gets a random verifier; FreshBooks would
then POST `name=callback.verify` to the uri: the test does that with `verification_delivery()`. A PUT with
the right verifier marks the callback verified; a PUT with `resend` records a resend in
`fb.state["resends"]`.
"""

import functools
import json
import secrets
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from connector.freshbooks import signature
from connector.sandbox.freshbooks import ACCOUNT_ID, unauthorized
from connector.sandbox.server import Response

FIXTURES = Path(__file__).resolve().parent / "data"  # FreshBooks SDK samples (MIT; see data/README.md)
BASE = r"/events/account/(?P<account_id>[^/]+)/events/callbacks"
ONE = BASE + r"/(?P<callback_id>\d+)"
# Event names FreshBooks accepts (https://www.freshbooks.com/api/webhooks): each resource's create/update/delete and the parent.
RESOURCES = (
    "bill",
    "bill_vendor",
    "category",
    "client",
    "credit_note",
    "estimate",
    "expense",
    "invoice",
    "item",
    "payment",
    "project",
    "recurring",
    "service",
    "tax",
    "time_entry",
)
EVENTS = {f"{r}{suffix}" for r in RESOURCES for suffix in ("", ".create", ".update", ".delete")} | {
    "estimate.sendByEmail",
    "invoice.sendByEmail",
}


def fixture(name):
    return json.loads((FIXTURES / name).read_text())


def _public(callback):
    return {k: callback[k] for k in ("callbackid", "verified", "uri", "event", "updated_at")}


def _now():
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def install_callback_routes(fb, first_id=1001, send_verification=None):
    """The callbacks API on `fb`. `send_verification(callback)`, when given, runs after a callback is created
    or a resend is asked (the sandbox POSTs the callback.verify delivery from there, as FreshBooks does)."""
    callbacks = fb.state.setdefault("callbacks", {})
    fb.state.setdefault("resends", [])

    def find(request):
        found = callbacks.get(int(request.match["callback_id"]))
        if found is None or found["account_id"] != request.match["account_id"]:
            return None
        return found

    @fb.route("GET", BASE)
    def list_callbacks(request):
        if denied := unauthorized(fb, request):
            return denied
        page, per_page = int(request.arg("page", 1)), int(request.arg("per_page", 15))
        with fb.lock:
            mine = [_public(c) for c in callbacks.values() if c["account_id"] == request.match["account_id"]]
        pages = max(1, -(-len(mine) // per_page))
        chunk = mine[(page - 1) * per_page : page * per_page]
        result = {"callbacks": chunk, "page": page, "pages": pages, "per_page": per_page, "total": len(mine)}
        return {"response": {"result": result}}

    def with_callback(handler):
        """A route on one callback: 401 without a valid token, FreshBooks' 404 body for an unknown id."""

        @functools.wraps(handler)
        def route(request):
            if denied := unauthorized(fb, request):
                return denied
            found = find(request)
            if found is None:
                return Response(404, fixture("get_callback_response__not_found.json"))
            return handler(request, found)

        return route

    @fb.route("POST", BASE)
    def create_callback(request):
        if denied := unauthorized(fb, request):
            return denied
        body = (request.json() or {}).get("callback") or {}
        event, uri = body.get("event"), body.get("uri") or ""
        if event not in EVENTS or not uri.startswith(("http://", "https://")):
            return Response(422, fixture("create_callback_response__validation_error.json"))
        with fb.lock:
            callback_id = max([first_id - 1, *callbacks]) + 1  # state may have been restored from disk
            callbacks[callback_id] = {
                "callbackid": callback_id,
                "account_id": request.match["account_id"],
                "event": event,
                "uri": uri,
                "verified": False,
                "verifier": secrets.token_urlsafe(24),
                "updated_at": _now(),
            }
        if send_verification:
            send_verification(callbacks[callback_id])
        return {"response": {"result": {"callback": _public(callbacks[callback_id])}}}

    @fb.route("GET", ONE)
    @with_callback
    def get_callback(request, found):
        return {"response": {"result": {"callback": _public(found)}}}

    @fb.route("PUT", ONE)
    @with_callback
    def update_callback(request, found):
        body = (request.json() or {}).get("callback") or {}
        if body.get("resend"):
            fb.state["resends"].append(found["callbackid"])
            if send_verification:
                send_verification(found)
        elif "verifier" in body:
            if body["verifier"] != found["verifier"]:
                return Response(
                    422,
                    {"errno": 422, "message": "Unprocessable", "details": ["verifier: Invalid verifier."]},
                )
            found["verified"], found["updated_at"] = True, _now()
        return {"response": {"result": {"callback": _public(found)}}}

    @fb.route("DELETE", ONE)
    @with_callback
    def delete_callback(request, found):
        with fb.lock:
            del callbacks[found["callbackid"]]
        return Response(204)

    return fb


def add_callback(fb, event, uri, account_id=ACCOUNT_ID, verified=False, callback_id=None):
    """A callback that already exists at FreshBooks (registered earlier or by someone else)."""
    callback_id = callback_id or max([5000, *fb.state["callbacks"]]) + 1
    fb.state["callbacks"][callback_id] = {
        "callbackid": callback_id,
        "account_id": account_id,
        "event": event,
        "uri": uri,
        "verified": verified,
        "verifier": secrets.token_urlsafe(24),
        "updated_at": _now(),
    }
    return callback_id


def verification_delivery(fb, callback_id):
    """The body of the `callback.verify` delivery FreshBooks sends for a new callback (field order as seen)."""
    callback = fb.state["callbacks"][callback_id]
    return urlencode(
        [
            ("user_id", "214214"),
            ("name", "callback.verify"),
            ("verifier", callback["verifier"]),
            ("object_id", str(callback_id)),
            ("account_id", callback["account_id"]),
            ("system", "https://acme.freshbooks.com"),
        ]
    ).encode()


def signed_delivery(fields, verifier):
    """(body, headers) of a delivery signed the way FreshBooks signs: json.dumps of the ordered fields."""
    fields = dict(fields)
    body = urlencode(list(fields.items())).encode()
    headers = {signature.HEADER: signature.compute(fields, verifier)}
    return body, headers


def delivery_fields(name="invoice.create", object_id="1234567", account_id=ACCOUNT_ID, business_id="6543"):
    fields = {"name": name, "object_id": object_id, "account_id": account_id}
    if business_id is not None:
        fields["business_id"] = business_id
    fields.update({"identity_id": "1234", "user_id": "1"})
    return fields
