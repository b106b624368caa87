"""One error family for everything that can go wrong with a vendor call or a mapping.

Every expected failure derives from `ConnectorError` and says, by three attributes, what the caller should do:

- `transient`: worth trying again later (network, HTTP 429/5xx, a token endpoint down);
- `ambiguous`: the write may have happened (no answer to a POST, a 5xx after sending): the idempotency
  ledger must look in Jira before writing again;
- `needs_reconnect`: the connection's credentials are refused for good (an OAuth grant gone, an API token or
  personal access token refused, a CAPTCHA lock-out): an operator must connect again; no call is made on it
  until then (connector.transport).

`status` is the vendor's HTTP status when there was one; `prefix` is put before the message on the event.
The retry and back-off rules that read these attributes live in connector.retry.
"""

import json


class ConnectorError(Exception):
    """Base of every expected failure. Class attributes give the defaults; the constructor may override."""

    transient = False
    ambiguous = False
    needs_reconnect = False
    prefix = ""  # shown before the message in the event's detail
    retry_after = 0.0  # seconds the vendor asked to wait (Retry-After with a 429 or 5xx), 0 when none

    def __init__(
        self, message="", *, status=None, transient=None, ambiguous=None, needs_reconnect=None, body=None
    ):
        super().__init__(message)
        self.status = status
        self.body = body
        if transient is not None:
            self.transient = transient
        if ambiguous is not None:
            self.ambiguous = ambiguous
        if needs_reconnect is not None:
            self.needs_reconnect = needs_reconnect

    @property
    def detail(self):
        """The text for an event's status detail."""
        prefix = self.prefix or ("Reconnect required: " if self.needs_reconnect else "")
        return f"{prefix}{self}"


class VendorError(ConnectorError):
    """A call to FreshBooks, Jira or an OAuth token endpoint failed."""


class JiraError(VendorError):
    """A failed Jira call (connector.jira.client). `body`: Jira's answer, shortened."""

    def field_errors(self):
        """{field id: Jira's message} from a 400 answer's ``errors`` object; {} for any other answer."""
        if self.status != 400:
            return {}
        try:
            body = json.loads(self.body or "{}")
        except ValueError:
            return {}
        errors = body.get("errors") if isinstance(body, dict) else None
        return errors if isinstance(errors, dict) else {}


class FreshBooksError(VendorError):
    """A failed FreshBooks call (connector.freshbooks.client), or a record FreshBooks sent we cannot read."""


class ReconnectRequired(VendorError):
    """The connection's grant is gone (invalid_grant, no refresh token): an operator must connect it again."""

    needs_reconnect = True
    prefix = "Reconnect required: "


class TokenRefused(ReconnectRequired):
    """A token endpoint refused the grant for good: a 4xx answer carrying an OAuth `error` (RFC 6749 §5.2) other
    than temporarily_unavailable / server_error, e.g. invalid_grant, unauthorized_client (Atlassian's answer to a
    dead refresh token), invalid_client, access_denied. `error` and `description` are the vendor's."""

    def __init__(self, error, description="", *, status=None):
        super().__init__(f"{error}: {description}" if description else error, status=status)
        self.error, self.description = error, description


class TokenRefreshError(VendorError):
    """The token endpoint failed in a way that may pass (network, 5xx, 429, temporarily_unavailable): try again
    later. A permanent refusal (TokenRefused) needs a reconnect instead."""

    transient = True


class RefreshDeferred(TokenRefreshError):
    """An OAuth refresh was needed inside a database transaction, where it may not run (its rollback would lose
    the rotated refresh token: tenants.tokens.refresh). Transient: the caller leaves the transaction, obtains the
    credentials again (refreshed) and retries (connector.ledger.under_lock does, once)."""


class MustWait(VendorError):
    """The vendor asks us to wait longer than one call may (Jira's quota spent until the next hourly reset, a long
    Retry-After): the event waits until `until` (an aware datetime, UTC) for `reason` (connector.waiting), it does
    not fail. `reason` is one of connector.waiting's reasons, e.g. "Jira's quota"."""

    transient = True

    def __init__(self, message="", *, until, reason, status=None, body=None):
        super().__init__(message, status=status, body=body)
        self.until, self.reason = until, reason


class RenderError(ConnectorError):
    """A mapping template does not compile or render (connector.render)."""

    prefix = "Mapping template: "


class LedgerError(ConnectorError):
    """A write that cannot be done safely (e.g. an update for an object never found in Jira)."""
