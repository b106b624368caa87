"""A fake auth.atlassian.com (authorize page + /oauth/token with rotating refresh tokens) on its own loopback
server, plus `GET /oauth/token/accessible-resources` installed on a FakeJira that plays api.atlassian.com
(a FakeJira with `cloud_id` set answers /ex/jira/{cloudId}/rest/api/3/... too).

Access tokens the auth server issues are accepted by the FakeJira (its bearer credentials).
State in `auth.state`: "sites" (accessible resources; the gateway answers on each site's cloud id, except those
in "unreachable"), plus the OAuth state of connector/sandbox/oauth.py.
"""

from connector.sandbox.oauth import install_oauth_routes
from connector.sandbox.server import FakeServer

CLIENT_ID, CLIENT_SECRET = "atl-client-id", "atl-client-secret"
CLOUD_ID = "11223344-a1b2-3b33-c444-def123456789"
REQUIRED_SCOPES = {"read:jira-work", "write:jira-work", "offline_access"}


def site(cloud_id=CLOUD_ID, name="acme", url="https://acme.atlassian.net"):
    return {
        "id": cloud_id,
        "url": url,
        "name": name,
        "scopes": ["read:jira-work", "write:jira-work", "read:jira-user", "manage:jira-webhook"],
        "avatarUrl": "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/flag.png",
    }


def make_fake_atlassian(jira, sites=None, port=0):
    """The auth server (returned) and the accessible-resources route on `jira` (the API gateway)."""
    auth = FakeServer("fake-atlassian-auth", port=port)
    auth.state["sites"] = sites if sites is not None else [site(cloud_id=jira.cloud_id or CLOUD_ID)]

    install_oauth_routes(
        auth,
        title="Atlassian: authorize",
        prefix="atl",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        authorize_path="/authorize",
        token_path="/oauth/token",
        deny_description="User did not authorize the request",
        accept_access_token=jira.credentials["bearer"].add,
        refused_status=403,
        token_fields={
            "expires_in": 3600,
            "scope": "read:jira-work write:jira-work read:jira-user manage:jira-webhook offline_access",
        },
        authorize_checks=[
            ("audience", lambda r: r.arg("audience") == "api.atlassian.com"),
            ("prompt", lambda r: r.arg("prompt") == "consent"),
            ("scope", lambda r: set(r.arg("scope", "").split()) >= REQUIRED_SCOPES),
        ],
    )

    @jira.route("GET", "/oauth/token/accessible-resources")
    def accessible_resources(request):
        # The gateway answers for the listed sites, except those in auth.state["unreachable"] (cloud ids).
        listed = {
            s["id"] for s in auth.state["sites"] if isinstance(s, dict) and isinstance(s.get("id"), str)
        }
        jira.state["cloud_ids"] = listed
        jira.state["unreachable"] = set(auth.state.get("unreachable") or ())
        return auth.state["sites"]

    return auth
