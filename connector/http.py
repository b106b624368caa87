"""Outbound HTTP for both vendors: one place that times each call and reports it.

The HTTP layer knows nothing of the audit trail: every call made for an event is reported as a `Call` to
the hooks registered with `on_call` (the audit app registers the one that stores it as an audit.Attempt,
see audit.apps). Authorization headers are never reported; request bodies and responses are (the hook
stores them encrypted).
"""

import functools
import os
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from django.conf import settings

MAX_STORED_RESPONSE = 20_000

_session = requests.Session()
# requests reads proxies, no_proxy and CA bundle variables from the environment on every call (~2 ms each):
# read them once per origin instead, with the same meaning.
_session.trust_env = False
_CA_BUNDLE = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


@functools.lru_cache(maxsize=256)
def _proxies(origin):
    """The environment's proxies for `origin` (scheme://host[:port]), honouring no_proxy; {} for none."""
    return requests.utils.get_environ_proxies(origin)


_hooks = []


@dataclass(frozen=True)
class Call:
    """One outbound call made for `event`: what was sent, what came back (or the network error)."""

    event: object
    actor: str
    action: str  # e.g. "POST /rest/api/3/issue"
    request: dict  # method, url and params/json/data when sent
    response: str  # the body, at most MAX_STORED_RESPONSE characters
    http_status: int | None
    error: str  # the network error, or "HTTP <status>" for a 4xx/5xx answer
    duration_ms: int
    # What the hooks stored it as, e.g. {"attempt": <audit.Attempt id>}: a write's snapshot is kept on its own
    # attempt (connector.snapshots). The response carries its Call as `response.call`.
    stored: dict = field(default_factory=dict)


def on_call(hook):
    """Register `hook(call)` to be told of every call made for an event (idempotent)."""
    if hook not in _hooks:
        _hooks.append(hook)


def send(method, url, *, event=None, actor="worker", action=None, **kwargs):
    """Send one request (never raising for HTTP status, never following a redirect) and report it when made for
    `event`. Vendor clients call it through connector.transport only.

    Raises requests.RequestException for network failures, after reporting them.
    """
    kwargs.setdefault("timeout", settings.HTTP_TIMEOUT)
    kwargs.setdefault("allow_redirects", False)  # a redirect is the caller's to judge (connector.transport)
    kwargs.setdefault("verify", _CA_BUNDLE)
    parts = urlsplit(url)
    kwargs.setdefault("proxies", _proxies(f"{parts.scheme}://{parts.netloc}"))
    action = action or f"{method} {parts.path}"
    started = time.monotonic()
    try:
        response = _session.request(method, url, **kwargs)
    except requests.RequestException as exc:
        _report(event, actor, action, method, url, kwargs, None, f"{type(exc).__name__}: {exc}", started)
        raise
    response.call = _report(event, actor, action, method, url, kwargs, response, "", started)
    return response


def _report(event, actor, action, method, url, kwargs, response, error, started):
    if event is None:
        return
    request = {"method": method, "url": url}
    for key in ("params", "json"):
        if kwargs.get(key) is not None:
            request[key] = kwargs[key]
    if kwargs.get("data") is not None and not isinstance(kwargs["data"], bytes):
        request["data"] = kwargs["data"]
    if response is not None and not error and response.status_code >= 400:
        error = f"HTTP {response.status_code}"
    call = Call(
        event=event,
        actor=actor,
        action=action[:200],
        request=request,
        response=(response.text[:MAX_STORED_RESPONSE] if response is not None else ""),
        http_status=response.status_code if response is not None else None,
        error=error,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    for hook in _hooks:
        hook(call)
    return call
