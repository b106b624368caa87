"""A fake auth.atlassian.com (authorize page + /oauth/token with rotating refresh tokens) on its own loopback
server, plus `GET /oauth/token/accessible-resources` installed on a FakeJira that plays api.atlassian.com
(a FakeJira with `cloud_id` set answers /ex/jira/{cloudId}/rest/api/3/... too).

Access tokens the auth server issues are accepted by the FakeJira (its bearer credentials).
State in `auth.state`: "sites" (accessible resources), "codes", "refresh_tokens", "token_error",
"authorize_requests" (query of every authorize request).
"""

import itertools

from tests.fakes.freshbooks_auth import authorize_page
from tests.fakes.server import FakeServer, Response

CLIENT_ID, CLIENT_SECRET = "atl-client-id", "atl-client-secret"
CLOUD_ID = "11223344-a1b2-3b33-c444-def123456789"
REQUIRED_SCOPES = {"read:jira-work", "write:jira-work", "offline_access"}
_counter = itertools.count(1)


def site(cloud_id=CLOUD_ID, name="acme", url="https://acme.atlassian.net"):
    return {"id": cloud_id, "url": url, "name": name,
            "scopes": ["read:jira-work", "write:jira-work", "read:jira-user", "manage:jira-webhook"],
            "avatarUrl": "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/flag.png"}  # fmt: skip


def make_fake_atlassian(jira, sites=None):
    """The auth server (returned) and the accessible-resources route on `jira` (the API gateway)."""
    auth = FakeServer("fake-atlassian-auth")
    auth.state.update(
        sites=sites if sites is not None else [site(cloud_id=jira.cloud_id or CLOUD_ID)],
        codes={},
        refresh_tokens=set(),
        token_error=None,
        authorize_requests=[],
    )

    @auth.route("GET", "/authorize")
    def authorize(request):
        auth.state["authorize_requests"].append(request.query)
        redirect_uri, state = request.arg("redirect_uri", ""), request.arg("state", "")
        scopes = set(request.arg("scope", "").split())
        problems = [
            name
            for name, ok in (
                ("client_id", request.arg("client_id") == CLIENT_ID),
                ("response_type", request.arg("response_type") == "code"),
                ("audience", request.arg("audience") == "api.atlassian.com"),
                ("prompt", request.arg("prompt") == "consent"),
                ("scope", scopes >= REQUIRED_SCOPES),
                ("redirect_uri", bool(redirect_uri)),
            )
            if not ok
        ]
        if problems:
            return Response(400, f"<h1>invalid authorize request: {', '.join(problems)}</h1>")
        code = f"atl-code-{next(_counter)}"
        with auth.lock:
            auth.state["codes"][code] = redirect_uri
        approve = {"code": code, "state": state}
        deny = {
            "error": "access_denied",
            "error_description": "User did not authorize the request",
            "state": state,
        }
        return authorize_page(
            "Atlassian: authorize", CLIENT_ID, request.arg("scope", ""), redirect_uri, approve, deny
        )

    def issue():
        n = next(_counter)
        access, refresh = f"atl-access-{n}", f"atl-refresh-{n}"
        with auth.lock:
            jira.credentials["bearer"].add(access)
            auth.state["refresh_tokens"].add(refresh)
        return {"access_token": access, "refresh_token": refresh, "token_type": "Bearer", "expires_in": 3600,
                "scope": "read:jira-work write:jira-work read:jira-user manage:jira-webhook offline_access"}  # fmt: skip

    @auth.route("POST", "/oauth/token")
    def token(request):
        body = request.json() if "json" in request.headers.get("content-type", "") else request.form()
        if auth.state["token_error"]:
            status, payload = auth.state["token_error"]
            return Response(status, payload)
        if body.get("client_id") != CLIENT_ID or body.get("client_secret") != CLIENT_SECRET:
            return Response(401, {"error": "access_denied", "error_description": "Unauthorized"})
        if body.get("grant_type") == "authorization_code":
            with auth.lock:
                redirect_uri = auth.state["codes"].pop(body.get("code"), None)
            if redirect_uri is None or redirect_uri != body.get("redirect_uri"):
                return Response(
                    403, {"error": "invalid_grant", "error_description": "Invalid authorization code"}
                )
            return issue()
        if body.get("grant_type") == "refresh_token":
            with auth.lock:
                known = body.get("refresh_token") in auth.state["refresh_tokens"]
                auth.state["refresh_tokens"].discard(body.get("refresh_token"))  # rotating
            if not known:
                return Response(
                    403, {"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}
                )
            return issue()
        return Response(400, {"error": "unsupported_grant_type"})

    @jira.route("GET", "/oauth/token/accessible-resources")
    def accessible_resources(request):
        return auth.state["sites"]

    return auth
