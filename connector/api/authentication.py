"""How the operator API knows its caller: an API token (tenants.api_tokens) in the Authorization header, or
the admin's session (for the docs page's "Try it out"; DRF enforces CSRF on its unsafe requests).

`Authorization: Token <secret>` and `Authorization: Bearer <secret>` are both accepted. A request without
either keyword is left to the next authentication class (anonymous: 401 from the permission check); a
malformed, unknown, revoked or expired token is refused with 401 and DRF's `{"detail": …}` body.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from tenants.api_tokens import TokenRefused, find

KEYWORDS = (b"token", b"bearer")


class ApiTokenAuthentication(BaseAuthentication):
    """request.user is the token's user, request.auth the tenants.ApiToken."""

    def authenticate(self, request):
        words = get_authorization_header(request).split()
        if not words or words[0].lower() not in KEYWORDS:
            return None
        if len(words) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid token header: give exactly one token after the keyword."
            )
        try:
            secret = words[1].decode("ascii")
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid token header: a token is ASCII only.") from None
        try:
            token = find(secret)
        except TokenRefused as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        return token.user, token

    def authenticate_header(self, request):
        """Makes refusals 401 (with this WWW-Authenticate) rather than 403."""
        return 'Token realm="api"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """The token as an OpenAPI security scheme (HTTP bearer; "Token" is accepted as the keyword too)."""

    target_class = ApiTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token made in the admin (API tokens → Add). Send `Authorization: Bearer <token>` "
            "or `Authorization: Token <token>`.",
        }
