"""Outbound HTTP for both vendors: one place that times each call and records it as an audit Attempt."""

import time
from urllib.parse import urlsplit

import requests
from django.conf import settings

from audit import metrics

MAX_STORED_RESPONSE = 20_000

_session = requests.Session()


def send(method, url, *, event=None, actor="worker", action=None, **kwargs):
    """Send one request (never raising for HTTP status) and record it on `event` when given.

    Raises requests.RequestException for network failures, after recording them.
    Authorization headers are never stored; the request body and the response are stored encrypted.
    """
    kwargs.setdefault("timeout", settings.HTTP_TIMEOUT)
    action = action or f"{method} {urlsplit(url).path}"
    started = time.monotonic()
    try:
        response = _session.request(method, url, **kwargs)
    except requests.RequestException as exc:
        metrics.vendor_call(vendor_of(url), method, None, event)
        _record(event, actor, action, method, url, kwargs, None, f"{type(exc).__name__}: {exc}", started)
        raise
    metrics.vendor_call(vendor_of(url), method, response.status_code, event)
    _record(event, actor, action, method, url, kwargs, response, "", started)
    return response


def vendor_of(url):
    """ "freshbooks" for FreshBooks' API and auth hosts, else "jira" (Jira sites and Atlassian's gateway)."""
    if url.startswith((settings.FRESHBOOKS_API_URL + "/", settings.FRESHBOOKS_AUTH_URL + "/")):
        return "freshbooks"
    return "jira"


def _record(event, actor, action, method, url, kwargs, response, error, started):
    if event is None:
        return
    from audit.models import Attempt

    request = {"method": method, "url": url}
    for key in ("params", "json"):
        if kwargs.get(key) is not None:
            request[key] = kwargs[key]
    if kwargs.get("data") is not None and not isinstance(kwargs["data"], bytes):
        request["data"] = kwargs["data"]
    if response is not None and not error and response.status_code >= 400:
        error = f"HTTP {response.status_code}"
    Attempt.objects.create(
        event=event,
        actor=actor,
        action=action[:200],
        request=request,
        response=(response.text[:MAX_STORED_RESPONSE] if response is not None else ""),
        http_status=response.status_code if response is not None else None,
        error=error,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
