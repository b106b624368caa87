"""Which vendor URLs the connector may send credentials to.

A Jira site URL typed by a user is where the connector sends the API token, so it must be https on a
public address: no loopback, private, link-local (cloud metadata), multicast or reserved address, by
literal or by DNS. `ALLOW_LOCAL_VENDOR_URLS` (on by default with DEBUG) lifts the rule for development
and the loopback vendor fakes.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError


def _addresses(host, port):
    """The IP addresses `host` resolves to (a literal resolves to itself); ValidationError when none."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise ValidationError(f"The host {host} does not resolve.") from exc
    return {ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos}


def check_vendor_url(url):
    """Raise ValidationError unless `url` is https on a public address (any http(s) URL when
    settings.ALLOW_LOCAL_VENDOR_URLS is on)."""
    try:
        parts = urlsplit(url or "")
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise ValidationError("Enter a valid URL.") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise ValidationError("Enter an http(s) URL, e.g. https://acme.atlassian.net.")
    if settings.ALLOW_LOCAL_VENDOR_URLS:
        return
    if parts.scheme != "https":
        raise ValidationError("The URL must use https (set ALLOW_LOCAL_VENDOR_URLS=1 for development).")
    for address in _addresses(host, port or 443):
        address = getattr(address, "ipv4_mapped", None) or address  # ::ffff:127.0.0.1 is loopback
        if not address.is_global or address.is_multicast:
            raise ValidationError(
                f"The host {host} is not on a public address ({address}); set ALLOW_LOCAL_VENDOR_URLS=1 "
                "for development."
            )
