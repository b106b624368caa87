"""FreshBooks OAuth on the fake FreshBooks server: an authorize page a browser can approve or deny, the token
endpoint (authorization_code and single-use refresh_token grants), `/auth/api/v1/users/me` and a client list.

State in `fb.state` (see connector/sandbox/freshbooks.py): "memberships", the businesses of the signed-in user
(list of dicts: account_id, business_id, name), "denied_accounts" (account ids whose accounting API answers 403),
plus the OAuth state of connector/sandbox/oauth.py.
"""

import json
from pathlib import Path

from connector.sandbox.freshbooks import ACCESS_TOKEN, ACCOUNT_ID, BUSINESS_ID, unauthorized
from connector.sandbox.oauth import install_oauth_routes
from connector.sandbox.server import Response

CLIENT_ID, CLIENT_SECRET = "fb-client-id", "fb-client-secret"
REFRESH_TOKEN = "fb-refresh-token"
# FreshBooks' users/me sample from the official Python SDK's tests (MIT; see data/README.md).
FIXTURE = Path(__file__).resolve().parent / "data" / "auth_me_response.json"


def install_auth_routes(fb, memberships=None, title="FreshBooks: authorize"):
    fb.state.setdefault(
        "memberships",
        memberships or [{"account_id": ACCOUNT_ID, "business_id": BUSINESS_ID, "name": "Acme Books"}],
    )

    fb.state.setdefault("refresh_tokens", {REFRESH_TOKEN})
    install_oauth_routes(
        fb,
        title=title,
        prefix="fb",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        authorize_path="/oauth/authorize",
        token_path="/auth/oauth/token",
        deny_description="The resource owner denied the request.",
        accept_access_token=fb.state["access_tokens"].add,
        token_fields={
            "expires_in": 43200,
            "scope": "user:profile:read user:invoices:read",
            "created_at": 1700000000,
        },
    )

    @fb.route("GET", "/auth/api/v1/users/me")
    def me(request):
        denied = unauthorized(fb, request)
        if denied:
            return denied
        data = json.loads(FIXTURE.read_text())
        template = data["response"]["business_memberships"][0]
        data["response"]["business_memberships"] = [
            {
                **template,
                "id": i + 1,
                "role": "owner",
                "business": {
                    **template["business"],
                    "id": int(m["business_id"]),
                    "account_id": m["account_id"],
                    "name": m["name"],
                },
            }
            for i, m in enumerate(fb.state["memberships"])
        ]
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
        if request.match["account_id"] in fb.state.get(
            "denied_accounts", ()
        ):  # e.g. a role without accounting
            return Response(403, {"response": {"errors": [{"errno": 1003, "message": "Access denied."}]}})
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
