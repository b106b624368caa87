"""The vendor-neutral half of the fake OAuth 2.0 servers (FreshBooks, Atlassian): a consent page a browser can
approve or deny, and a token endpoint with the authorization_code grant and single-use (rotating)
refresh_token grants.

State in `server.state`:
- "codes": issued authorization codes (code → redirect_uri), "refresh_tokens": refresh tokens still usable,
- "token_error": when set, (status, body) returned by the token endpoint instead of tokens,
- "on_refresh": optional callable(request) run before a refresh grant is answered; it may return a Response,
- "authorize_requests": the query of every authorize request.
"""

import html
import itertools
from urllib.parse import urlencode

from connector.sandbox.server import Response

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


def install_oauth_routes(
    server,
    *,
    title,
    prefix,
    client_id,
    client_secret,
    authorize_path,
    token_path,
    deny_description,
    accept_access_token,
    token_fields,
    refused_status=400,
    authorize_checks=(),
):
    """The authorize page and the token endpoint on `server`. Tokens are named `{prefix}-access-N` and
    `{prefix}-refresh-N`; `accept_access_token(token)` makes the resource server accept a new one;
    `token_fields` (expires_in, scope, ...) complete each token answer; `authorize_checks` are extra
    (name, callable(request) → bool) requirements of the authorize request."""
    for key, value in (
        ("codes", {}),
        ("refresh_tokens", set()),
        ("token_error", None),
        ("on_refresh", None),
        ("authorize_requests", []),
    ):
        server.state.setdefault(key, value)

    def issue():
        n = next(_counter)
        access, refresh = f"{prefix}-access-{n}", f"{prefix}-refresh-{n}"
        with server.lock:
            accept_access_token(access)
            server.state["refresh_tokens"].add(refresh)
        return {"access_token": access, "refresh_token": refresh, "token_type": "Bearer", **token_fields}

    @server.route("GET", authorize_path)
    def authorize(request):
        server.state["authorize_requests"].append(request.query)
        redirect_uri, state = request.arg("redirect_uri", ""), request.arg("state", "")
        checks = [
            ("client_id", lambda r: r.arg("client_id") == client_id),
            ("response_type", lambda r: r.arg("response_type") == "code"),
            ("redirect_uri", lambda r: bool(redirect_uri)),
            *authorize_checks,
        ]
        problems = [name for name, ok in checks if not ok(request)]
        if problems:
            return Response(400, f"<h1>invalid authorize request: {', '.join(problems)}</h1>")
        code = f"{prefix}-code-{next(_counter)}"
        with server.lock:
            server.state["codes"][code] = redirect_uri
        approve = {"code": code, "state": state}
        deny = {"error": "access_denied", "error_description": deny_description, "state": state}
        scope = request.arg("scope", "")
        return authorize_page(title, client_id, scope, redirect_uri, approve, deny)

    def refused():
        description = "The provided authorization grant is invalid, expired or revoked."
        return Response(refused_status, {"error": "invalid_grant", "error_description": description})

    @server.route("POST", token_path)
    def token(request):
        body = request.json() if "json" in request.headers.get("content-type", "") else request.form()
        if server.state["token_error"]:
            status, payload = server.state["token_error"]
            return Response(status, payload)
        if body.get("client_id") != client_id or body.get("client_secret") != client_secret:
            return Response(
                401, {"error": "invalid_client", "error_description": "Client authentication failed."}
            )
        grant = body.get("grant_type")
        if grant == "authorization_code":
            with server.lock:
                redirect_uri = server.state["codes"].pop(body.get("code"), None)
            if redirect_uri is None or redirect_uri != body.get("redirect_uri"):
                return refused()
            return issue()
        if grant == "refresh_token":
            if server.state["on_refresh"]:
                answer = server.state["on_refresh"](request)
                if answer is not None:
                    return answer
            with server.lock:
                known = body.get("refresh_token") in server.state["refresh_tokens"]
                server.state["refresh_tokens"].discard(body.get("refresh_token"))  # single use / rotating
            if not known:
                return refused()
            return issue()
        return Response(400, {"error": "unsupported_grant_type"})

    return server
