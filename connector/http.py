"""Outbound HTTP for both vendors: one place that times each call and records it as an audit Attempt."""

import functools
import os
import time
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


def send(method, url, *, event=None, actor="worker", action=None, **kwargs):
    """Send one request (never raising for HTTP status) and record it on `event` when given.

    Raises requests.RequestException for network failures, after recording them.
    Authorization headers are never stored; the request body and the response are stored encrypted.
    """
    kwargs.setdefault("timeout", settings.HTTP_TIMEOUT)
    kwargs.setdefault("verify", _CA_BUNDLE)
    parts = urlsplit(url)
    kwargs.setdefault("proxies", _proxies(f"{parts.scheme}://{parts.netloc}"))
    action = action or f"{method} {parts.path}"
    started = time.monotonic()
    try:
        response = _session.request(method, url, **kwargs)
    except requests.RequestException as exc:
        _record(event, actor, action, method, url, kwargs, None, f"{type(exc).__name__}: {exc}", started)
        raise
    _record(event, actor, action, method, url, kwargs, response, "", started)
    return response


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
