"""FreshBooks OAuth on the fake FreshBooks server: an authorize page a browser can approve or deny, the token
endpoint (authorization_code and single-use refresh_token grants), `/auth/api/v1/users/me` and a client list.

State in `fb.state` (see tests/fakes/freshbooks.py):
- "memberships": the businesses of the signed-in user (list of dicts: account_id, business_id, name),
- "codes": issued authorization codes, "refresh_tokens": refresh tokens still usable,
- "token_error": when set, (status, body) returned by the token endpoint instead of tokens,
- "on_refresh": optional callable(request) run before a refresh grant is answered; it may return a Response.
"""

import html
import itertools
import json
from pathlib import Path
from urllib.parse import urlencode

from tests.fakes.freshbooks import ACCESS_TOKEN, ACCOUNT_ID, BUSINESS_ID, unauthorized
from tests.fakes.server import Response

CLIENT_ID, CLIENT_SECRET = "fb-client-id", "fb-client-secret"
REFRESH_TOKEN = "fb-refresh-token"
FIXTURE = (
    Path(__file__).resolve().parent.parent
    / "fixtures"
    / "freshbooks"
    / "python-sdk"
    / "auth_me_response.json"
)
_counter = itertools.count(1)


def authorize_page(title, client_id, scope, redirect_uri, approve, deny):
    """A consent page: two GET forms back to `redirect_uri` (approve: code + state; deny: error + state).

    Each form also carries its full target URL in data-href for tests that do not run a browser.
    """

    def form(form_id, label, params):
        fields = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
        )
        href = f"{redirect_uri}?{urlencode(params)}"
        return (
            f'<form id="{form_id}" method="get" action="{html.escape(redirect_uri)}" data-href="{html.escape(href)}">'
            f'{fields}<button type="submit">{label}</button></form>'
        )

    return f"""<!doctype html><html><head><title>{html.escape(title)}</title></head><body>
<h1>{html.escape(title)}</h1>
<p>The application <b>{html.escape(client_id)}</b> asks for: <code id="scope">{html.escape(scope)}</code></p>
{form("approve", "Approve", approve)}
{form("deny", "Deny", deny)}
</body></html>"""


def _body(request):
    if "json" in request.headers.get("content-type", ""):
        return request.json() or {}
    return request.form()


def install_auth_routes(fb, memberships=None):
    fb.state.setdefault("memberships", memberships or [{"account_id": ACCOUNT_ID, "business_id": BUSINESS_ID,
                                                       "name": "Acme Books"}])  # fmt: skip
    fb.state.setdefault("codes", {})
    fb.state.setdefault("refresh_tokens", {REFRESH_TOKEN})
    fb.state.setdefault("token_error", None)
    fb.state.setdefault("on_refresh", None)

    @fb.route("GET", "/oauth/authorize")
    def authorize(request):
        redirect_uri, state = request.arg("redirect_uri", ""), request.arg("state", "")
        if (
            request.arg("client_id") != CLIENT_ID
            or request.arg("response_type") != "code"
            or not redirect_uri
        ):
            return Response(400, "<h1>invalid authorize request</h1>")
        code = f"fb-code-{next(_counter)}"
        with fb.lock:
            fb.state["codes"][code] = redirect_uri
        approve = {"code": code, "state": state}
        deny = {
            "error": "access_denied",
            "error_description": "The resource owner denied the request.",
            "state": state,
        }
        return authorize_page(
            "FreshBooks: authorize", CLIENT_ID, request.arg("scope", ""), redirect_uri, approve, deny
        )

    def issue():
        n = next(_counter)
        access, refresh = f"fb-access-{n}", f"fb-refresh-{n}"
        with fb.lock:
            fb.state["access_tokens"].add(access)
            fb.state["refresh_tokens"].add(refresh)
        return {"access_token": access, "refresh_token": refresh, "token_type": "Bearer", "expires_in": 43200,
                "scope": "user:profile:read user:invoices:read", "created_at": 1700000000}  # fmt: skip

    def invalid_grant(description):
        return Response(400, {"error": "invalid_grant", "error_description": description})

    @fb.route("POST", "/auth/oauth/token")
    def token(request):
        body = _body(request)
        if fb.state["token_error"]:
            status, payload = fb.state["token_error"]
            return Response(status, payload)
        if body.get("client_id") != CLIENT_ID or body.get("client_secret") != CLIENT_SECRET:
            return Response(
                401, {"error": "invalid_client", "error_description": "Client authentication failed."}
            )
        grant = body.get("grant_type")
        if grant == "authorization_code":
            with fb.lock:
                redirect_uri = fb.state["codes"].pop(body.get("code"), None)
            if redirect_uri is None or redirect_uri != body.get("redirect_uri"):
                return invalid_grant("The provided authorization grant is invalid, expired or revoked.")
            return issue()
        if grant == "refresh_token":
            if fb.state["on_refresh"]:
                answer = fb.state["on_refresh"](request)
                if answer is not None:
                    return answer
            with fb.lock:
                known = body.get("refresh_token") in fb.state["refresh_tokens"]
                fb.state["refresh_tokens"].discard(body.get("refresh_token"))  # single use
            if not known:
                return invalid_grant("The provided authorization grant is invalid, expired or revoked.")
            return issue()
        return Response(400, {"error": "unsupported_grant_type"})

    @fb.route("GET", "/auth/api/v1/users/me")
    def me(request):
        denied = unauthorized(fb, request)
        if denied:
            return denied
        data = json.loads(FIXTURE.read_text())
        template = data["response"]["business_memberships"][0]
        data["response"]["business_memberships"] = [
            {**template, "id": i + 1, "role": "owner",
             "business": {**template["business"], "id": int(m["business_id"]), "account_id": m["account_id"],
                          "name": m["name"]}}
            for i, m in enumerate(fb.state["memberships"])
        ]  # fmt: skip
        return data

    @fb.route("GET", r"/accounting/account/(?P<account_id>[^/]+)/users/clients")
    def list_clients(request):
        denied = unauthorized(fb, request)
        if denied:
            return denied
        if request.match["account_id"] not in {m["account_id"] for m in fb.state["memberships"]}:
            return Response(
                404, {"response": {"errors": [{"message": "The requested account does not exist."}]}}
            )
        result = {
            "clients": [],
            "page": 1,
            "pages": 0,
            "per_page": int(request.arg("per_page", 15)),
            "total": 0,
        }
        return {"response": {"result": result}}

    return fb


__all__ = ["ACCESS_TOKEN", "ACCOUNT_ID", "BUSINESS_ID", "CLIENT_ID", "REFRESH_TOKEN", "install_auth_routes"]
