"""FreshBooks delivery signatures: json.dumps of the ordered form fields, HMAC-SHA256, base64."""

import base64
import hashlib
import hmac
from urllib.parse import quote

import pytest

from connector.freshbooks import signature

KNOWN_BODY = (
    b"name=invoice.create&object_id=1234567&account_id=6BApk&business_id=6543&identity_id=1234&user_id=1"
)
KNOWN_VERIFIER = "test_verifier_abc123"
KNOWN_SIGNATURE = "66m3NCYE4s7FV/3rFs/xCnKvkHg5nuqiBe9IWfSz4MM="


def hmac_b64(key, text):
    return base64.b64encode(hmac.new(key.encode(), text.encode(), hashlib.sha256).digest()).decode()


def test_known_vector():
    fields = signature.parse_form(KNOWN_BODY)
    assert signature.message(fields) == (
        '{"name": "invoice.create", "object_id": "1234567", "account_id": "6BApk", '
        '"business_id": "6543", "identity_id": "1234", "user_id": "1"}'
    )
    assert signature.compute(fields, KNOWN_VERIFIER) == KNOWN_SIGNATURE
    assert signature.verify(fields, KNOWN_SIGNATURE, ["other", KNOWN_VERIFIER])


def test_not_the_raw_body_nor_sorted_nor_compact():
    fields = signature.parse_form(KNOWN_BODY)
    raw = hmac_b64(KNOWN_VERIFIER, KNOWN_BODY.decode())
    sorted_keys = hmac_b64(KNOWN_VERIFIER, signature.json.dumps(fields, sort_keys=True))
    compact = hmac_b64(KNOWN_VERIFIER, signature.json.dumps(fields, separators=(",", ":")))
    hex_digest = hmac.new(KNOWN_VERIFIER.encode(), signature.message(fields).encode(), "sha256").hexdigest()
    for wrong in (raw, sorted_keys, compact, hex_digest, "", None):
        assert not signature.verify(fields, wrong, [KNOWN_VERIFIER])


def test_wrong_verifier_and_tampered_fields_fail():
    fields = signature.parse_form(KNOWN_BODY)
    assert not signature.verify(fields, KNOWN_SIGNATURE, ["test_verifier_abc124"])
    assert not signature.verify(fields, KNOWN_SIGNATURE, [])
    tampered = dict(fields, object_id="1234568")
    assert not signature.verify(tampered, KNOWN_SIGNATURE, [KNOWN_VERIFIER])


def test_body_order_is_signed_order():
    reordered = signature.parse_form(
        b"object_id=1234567&name=invoice.create&account_id=6BApk&business_id=6543&identity_id=1234&user_id=1"
    )
    assert list(reordered) == ["object_id", "name", "account_id", "business_id", "identity_id", "user_id"]
    assert signature.compute(reordered, KNOWN_VERIFIER) != KNOWN_SIGNATURE


def test_non_ascii_values_are_signed_with_json_escapes():
    note = "Café Ünïcode ✓ 😀"
    body = f"name=client.update&object_id=9&account_id=6BApk&note={quote(note)}".encode()
    fields = signature.parse_form(body)
    assert fields["note"] == note
    # Written out by hand: Python's json.dumps escapes non-ASCII (surrogate pairs beyond the BMP).
    expected_message = (
        '{"name": "client.update", "object_id": "9", "account_id": "6BApk", '
        '"note": "Caf\\u00e9 \\u00dcn\\u00efcode \\u2713 \\ud83d\\ude00"}'
    )
    assert signature.message(fields) == expected_message
    assert signature.compute(fields, "v\u00e9rifier") == hmac_b64("v\u00e9rifier", expected_message)
    assert signature.verify(fields, hmac_b64("v\u00e9rifier", expected_message), ["v\u00e9rifier"])


def test_form_parsing_keeps_blanks_and_plus_as_space():
    fields = signature.parse_form(b"name=invoice.update&note=&memo=a+b%2Bc&object_id=1")
    assert fields == {"name": "invoice.update", "note": "", "memo": "a b+c", "object_id": "1"}
    assert signature.parse_form(b"") == {}


@pytest.mark.parametrize(
    "body",
    [b"a=1&a=2", b"justtext", b"a=1&&b=2", b"a=%FF", "a=é".encode(), b"a=%00", b"\x00=1", b'{"json": 1}'],
)
def test_malformed_forms_are_refused(body):
    with pytest.raises(signature.MalformedForm):
        signature.parse_form(body)


def test_too_many_fields_are_refused():
    with pytest.raises(signature.MalformedForm):
        signature.parse_form("&".join(f"f{i}=1" for i in range(signature.MAX_FIELDS + 1)).encode())
