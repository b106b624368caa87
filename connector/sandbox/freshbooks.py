"""A fake FreshBooks (API host and auth host in one loopback server).

Shared state in `server.state`:
- "access_tokens": set of bearer tokens the API accepts (the auth routes add to it; tests may too),
- other keys are owned by the route modules that install them (auth, callbacks, records).
Route modules: install their routes with functions taking the server, e.g. `install_callback_routes(fb)`.
"""

from connector.sandbox.server import FakeServer, Response

ACCOUNT_ID, BUSINESS_ID = "6BApk", "6543"
ACCESS_TOKEN = "fb-access-token"


def make_fake_freshbooks(port=0):
    fb = FakeServer("fake-freshbooks", port=port)
    fb.state["access_tokens"] = {ACCESS_TOKEN}
    return fb


def unauthorized(fb, request):
    """A 401 Response (FreshBooks' shape) unless the request carries a bearer token the fake issued."""
    header = request.headers.get("authorization", "")
    if header.startswith("Bearer ") and header[7:] in fb.state["access_tokens"]:
        return None
    return Response(401, {"errno": 401, "message": "invalid_token: The access token is invalid"})
