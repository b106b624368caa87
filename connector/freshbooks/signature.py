"""FreshBooks webhook signatures.

FreshBooks signs ``json.dumps`` (Python defaults: separators ", " and ": ", ensure_ascii) of the form
fields *in the order they appear in the body*, HMAC-SHA256 keyed with the callback's verifier, and
sends the base64 digest in ``X-FreshBooks-Hmac-SHA256``. It is not a signature of the raw body, so the
body is parsed here with an order-preserving parser instead of Django's ``request.POST``.
"""

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qsl

HEADER = "X-FreshBooks-Hmac-SHA256"
MAX_FIELDS = 100


class MalformedForm(ValueError):
    """The body is not a well-formed application/x-www-form-urlencoded document."""


def parse_form(body):
    """The form fields of `body` (bytes) as a dict in body order; MalformedForm when it is not a form.

    Blank values are kept (they are signed too); a repeated field name is refused because FreshBooks
    signs a dict, so a repeated key cannot come from it.
    """
    try:
        text = body.decode("ascii") if isinstance(body, bytes) else body
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=bool(text),
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except ValueError as exc:  # includes UnicodeDecodeError and "Max number of fields exceeded"
        raise MalformedForm(str(exc)[:200]) from exc
    fields = {}
    for key, value in pairs:
        if key in fields:
            raise MalformedForm(f"field {key!r} appears more than once")
        if "\x00" in key or "\x00" in value:
            raise MalformedForm("NUL characters are not allowed")
        fields[key] = value
    return fields


def message(fields):
    """The exact text FreshBooks signs: Python's default json.dumps of the ordered fields."""
    return json.dumps({str(k): str(v) for k, v in fields.items()})


def compute(fields, verifier):
    """The base64 HMAC-SHA256 signature of `fields` (ordered dict of strings) with `verifier`."""
    digest = hmac.new(verifier.encode(), message(fields).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(fields, signature, verifiers):
    """True when `signature` matches `fields` signed with any of `verifiers` (constant-time compare)."""
    if not signature:
        return False
    given = signature.strip().encode("utf-8", "replace")
    matched = False
    for verifier in verifiers:
        if verifier and hmac.compare_digest(compute(fields, verifier).encode(), given):
            matched = True
    return matched
