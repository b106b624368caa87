"""The one transport of every vendor call (FreshBooks, Jira): sending, retry policy, decoding, error mapping.

Modelled on Sentry's shared-integrations `BaseApiClient`: a vendor client subclasses `VendorClient` and keeps
only what is its own — URLs (`url`), credentials (`credentials`, `refresh_credentials`), what a refusal of
its credentials looks like (`refused`) and how its errors read (`error_message`). Everything else is here:

- Sending through connector.http (timed, reported to the audit trail), never following a redirect.
- Retry (connector.retry): 429 is flow control, asked of the `rate_limit` policy; idempotent calls are
  retried on 5xx and network errors; a POST is never re-sent (the ledger decides).
- The response contract. A 3xx fails naming the new location and what to do. A 2xx must be the JSON asked
  for: an HTML page or any other body served as 2xx fails (a POST ambiguous: the ledger looks in the vendor
  before writing again; a GET transient, never read as "absent"); an empty answer is accepted as None where
  it is expected (204, or an empty PUT/DELETE answer). A 4xx/5xx maps to `error_class` with the vendor's
  message. Every reason reads in plain words: no Python exception name reaches an event.
- Refused credentials stop the connection: when `refused(response)` names a reason (a 401 on an API-token or
  personal-access-token site, Data Center's CAPTCHA lock-out) the connection is marked "Needs reconnect"
  (tenants.tokens.mark_reconnect: one alert) and no further call is made on it until an operator fixes it.
- No vendor call waits inside a web request's database transaction (`guard_transaction`).

Rate limiting hooks (for the quota work): `VendorClient.rate_limit` is a `RateLimitPolicy`, consulted
`before_request(client, method, url)` before every try (it may sleep, or raise a ConnectorError such as a
"deferred until" error), told `after_response(client, method, url, response)` of every answer (to read
`RateLimit-Reason`, `Retry-After`, `Beta-RateLimit*`, `X-RateLimit-*`), and asked
`retry_delay(client, method, attempt, waited, response)` on a 429: seconds to wait before the next try, or
None to give up (the call then fails as transient).
"""

import contextvars
import time
from urllib.parse import urljoin

import requests
from django.core.signals import request_finished, request_started
from django.db import connection

from connector import http, retry
from connector.errors import VendorError

JSON_TYPES = ("/json", "+json")  # application/json, application/vnd.api+json

# (words found in the chain of network exceptions, what they mean in plain words), first match wins.
NETWORK_REASONS = (
    (
        (
            "nameresolution",
            "name or service not known",
            "nodename nor servname",
            "temporary failure in name resolution",
            "no address associated",
            "getaddrinfo",
        ),
        "the name does not resolve",
    ),
    (("connection refused", "connectionrefused"), "nothing accepts connections there (connection refused)"),
    (("certificate", "ssl"), "its TLS certificate could not be verified"),
    (("timed out", "timeout"), "it did not answer in time"),
    (("reset", "aborted", "remotedisconnected", "connection broken"), "the connection was cut"),
)


def network_reason(exc):
    """A network failure (`exc` and its causes) in plain words, e.g. "it did not answer in time"."""
    chain, seen = [], exc
    while seen is not None and len(chain) < 10:
        chain.append(f"{type(seen).__name__} {seen}".lower())
        seen = seen.__cause__ or seen.__context__
    text = " ".join(chain)
    return next(
        (why for words, why in NETWORK_REASONS if any(w in text for w in words)), "the connection failed"
    )


# --- rate limiting (the hook the quota work plugs into) ----------------------------------------------------


class RateLimitPolicy:
    """Today's 429 behaviour: no pacing before a call; a 429 is waited out as connector.retry.call_delay says
    (Retry-After and X-RateLimit-Reset are minimums) up to MAX_RATE_LIMIT_WAITS times within
    MAX_TOTAL_WAIT_SECONDS. `X-RateLimit-*` and `Retry-After` are read only together with a 429 (Data Center
    sends `retry-after: 0` on ordinary answers while tokens remain)."""

    def before_request(self, client, method, url):
        """Before every try: may sleep (pacing) or raise a ConnectorError (e.g. deferred until a reset)."""

    def after_response(self, client, method, url, response):
        """After every answer, whatever its status: read the vendor's quota headers."""

    def retry_delay(self, client, method, attempt, waited, response):
        """Seconds to wait before try `attempt + 1` after a 429 (`response`), or None to give up."""
        if not retry.may_retry_call(method, attempt, waited, 429):
            return None
        headers = response.headers
        return retry.call_delay(
            attempt,
            headers.get("Retry-After"),
            budget=retry.MAX_TOTAL_WAIT_SECONDS - waited,
            rate_limit_reset=headers.get("X-RateLimit-Reset"),
        )


# --- no vendor call inside a web request's transaction -----------------------------------------------------

_in_request = contextvars.ContextVar("mlc_in_web_request", default=False)


def _request_started(**kwargs):
    _in_request.set(True)


def _request_finished(**kwargs):
    _in_request.set(False)


request_started.connect(_request_started, dispatch_uid="connector.transport.request_started")
request_finished.connect(_request_finished, dispatch_uid="connector.transport.request_finished")


class TransactionOpen(RuntimeError):
    """A vendor call was made while a web request's database transaction is open: a bug (it would hold the
    database — on SQLite the whole file — while the vendor answers, and roll back what the vendor returned)."""


def open_transaction():
    """True when the default connection is inside an atomic block opened by the code (not by a test case)."""
    return any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


def guard_transaction(method, url):
    """Raise TransactionOpen for a vendor call made inside a web request while a transaction is open — any
    call, the ledger's locked writes included: work that must hold a lock around a vendor call (the ledger's
    writes, a rollback) runs in the worker, and the web request only queues it (connector.rollback)."""
    if _in_request.get() and open_transaction():
        raise TransactionOpen(f"{method} {url} was called inside a web request's database transaction.")


# --- the client base ------------------------------------------------------------------------------------------


class VendorClient:
    """Base of the vendor clients. Subclasses set `vendor`, `error_class`, `redirect_advice` and implement
    `url`, `credentials`; optionally `refresh_credentials`, `refused`, `error_message`, `stopped`, `stop`."""

    vendor = "vendor"
    error_class = VendorError
    redirect_advice = "update the URL"
    rate_limit = RateLimitPolicy()
    base_headers = {"Accept": "application/json"}
    retries = True  # False: one try (no retry on 429, 5xx or network errors), e.g. while a sender waits

    def __init__(self, event=None, actor="worker", sleep=time.sleep):
        self.event = event
        self.actor = actor
        self.sleep = sleep
        # The connector.http.Call of the latest answer: its attempt keeps a write's snapshot (connector.snapshots).
        self.last_call = None

    # --- what a vendor client provides -------------------------------------------------------------------

    def url(self, path):
        raise NotImplementedError

    def credentials(self):
        """Request keyword arguments carrying the credentials for one try: {"headers": {...}} or {"auth": ...}."""
        raise NotImplementedError

    def refresh_credentials(self, sent):
        """After a 401: fresh credentials to try once more (OAuth refresh), or None when there is no refresh."""
        return None

    def refused(self, response):
        """The reason, in plain words, when `response` refuses the credentials for good; None otherwise."""
        return None

    def stopped(self):
        """The reason calls on this connection are stopped (it needs a reconnect), or None."""
        return None

    def stop(self, reason):
        """Mark the connection "Needs reconnect" with `reason` (one alert)."""

    def error_message(self, response):
        return f"HTTP {response.status_code}"

    # --- the transport -----------------------------------------------------------------------------------

    def ready(self):
        """Obtain the credentials now (an OAuth token due is refreshed and committed): callers that are about
        to open a transaction around a call do this first (connector.ledger)."""
        if not self.stopped():
            self.credentials()

    def error(self, message, **kwargs):
        return self.error_class(message, **kwargs)

    def request(self, method, path, *, json=None, params=None, action=None):
        """Call the vendor and return the decoded JSON (None for an expected empty answer).

        Raises `error_class` (a VendorError: transient / ambiguous / needs_reconnect set from the answer).
        """
        url = self.url(path)
        reason = self.stopped()
        if reason:
            raise self.error(reason, needs_reconnect=True)
        guard_transaction(method, url)
        credentials = self.credentials()
        refreshed, attempt, waited = False, 0, 0.0
        while True:
            attempt += 1
            self.rate_limit.before_request(self, method, url)
            sent = {**credentials, "headers": {**self.base_headers, **credentials.get("headers", {})}}
            try:
                response = http.send(
                    method,
                    url,
                    event=self.event,
                    actor=self.actor,
                    action=action,
                    json=json,
                    params=params,
                    allow_redirects=False,
                    **sent,
                )
            except requests.ConnectTimeout as exc:
                raise self.error(f"{self.vendor} unreachable: {network_reason(exc)}", transient=True) from exc
            except requests.RequestException as exc:
                # The request may have reached the vendor (read timeout, connection reset after sending).
                if self.retries and retry.may_retry_call(method, attempt, waited):
                    waited += self._wait(
                        retry.call_delay(attempt, budget=retry.MAX_TOTAL_WAIT_SECONDS - waited)
                    )
                    credentials = self.credentials()
                    continue
                raise self.error(
                    f"No answer from {self.vendor}: {network_reason(exc)}",
                    transient=True,
                    ambiguous=method not in retry.IDEMPOTENT,
                ) from exc
            self.last_call = response.call
            self.rate_limit.after_response(self, method, url, response)
            status = response.status_code
            if status == 401 and not refreshed:
                refreshed = True
                fresh = self.refresh_credentials(sent)
                if fresh is not None:
                    credentials = fresh
                    continue
            if status == 429 and self.retries:
                delay = self.rate_limit.retry_delay(self, method, attempt, waited, response)
                if delay is not None:
                    waited += self._wait(delay)
                    credentials = self.credentials()
                    continue
            elif status >= 500 and self.retries and retry.may_retry_call(method, attempt, waited, status):
                waited += self._wait(
                    retry.call_delay(
                        attempt,
                        response.headers.get("Retry-After"),
                        budget=retry.MAX_TOTAL_WAIT_SECONDS - waited,
                    )
                )
                credentials = self.credentials()
                continue
            return self.decode(method, path, response)

    def _wait(self, seconds):
        self.sleep(seconds)
        return seconds

    def decode(self, method, path, response):
        """The answer's JSON, or `error_class` as the response contract says (see the module docstring)."""
        status = response.status_code
        where = f"{self.vendor} {method} {path}"
        if 300 <= status < 400:
            location = response.headers.get("Location")
            target = (
                urljoin(response.url or self.url(path), location) if location else "no new location given"
            )
            raise self.error(
                f"{where} → {status} redirect to {target}: {self.redirect_advice} (redirects are never followed).",
                status=status,
            )
        if status >= 400:
            reason = self.refused(response) if status in (401, 403) else None
            if reason:
                self.stop(reason)
                raise self.error(reason, status=status, needs_reconnect=True)
            error = self.error(
                f"{where} → {status}: {self.error_message(response)}",
                status=status,
                transient=status in (408, 429) or status >= 500,
                ambiguous=status >= 500 and method not in retry.IDEMPOTENT,
                body=response.text[:2000],
            )
            if status == 429 or status >= 500:  # Retry-After is read only with a 429 or a 5xx
                error.retry_after = retry.retry_after_seconds(response.headers.get("Retry-After"))
            raise error
        if status == 204 or (not response.content and method in ("PUT", "DELETE")):
            return None
        content_type = (response.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if response.content and (not content_type or content_type.endswith(JSON_TYPES)):
            try:
                return response.json()
            except ValueError:
                pass
        if not response.content:
            shown = "an empty answer"
        else:
            shown = f"a {content_type} page" if content_type else "an answer that is not JSON"
        doubt = method not in retry.IDEMPOTENT
        then = (
            "the write may have happened: it is looked up before writing again"
            if doubt
            else "nothing was read; try again once the site answers normally"
        )
        raise self.error(
            f"{where} → {status} with {shown}, not the JSON asked for (a sign-in page or a proxy answered?): "
            f"{then}.",
            status=status,
            transient=True,
            ambiguous=doubt,
        )
