"""Property: whatever a caller sends to /webhooks/freshbooks/, no 500 and no event without a valid signature."""

from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from audit.models import Event
from connector.freshbooks import signature
from tenants.models import FreshBooksWebhook
from tests.fakes.freshbooks_callbacks import connected_account

URL = "/webhooks/freshbooks/"
FORM = "application/x-www-form-urlencoded"
VERIFIER = "fuzz-verifier"
ACCOUNT_ID, BUSINESS_ID = "6BApk", "6543"

texts = st.text(max_size=80)
# What a WSGI server can put in the environ: header bytes decoded as ISO-8859-1, no control characters.
header_texts = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=80
)
field_names = st.sampled_from(
    ["name", "object_id", "account_id", "business_id", "identity_id", "user_id", "verifier", "system"]
) | st.text(max_size=12)
field_values = (
    st.sampled_from(
        ["invoice.create", "callback.verify", "1234567", ACCOUNT_ID, BUSINESS_ID, "", "1001", "\x00"]
    )
    | texts
)
forms = st.dictionaries(field_names, field_values, max_size=8).map(
    lambda d: {"name": "invoice.create", "object_id": "1", "account_id": ACCOUNT_ID, **d}
)
content_types = (
    st.sampled_from(
        [
            FORM,
            FORM + "; charset=utf-8",
            FORM + "; charset=latin-1",
            FORM + ";;;=",
            "application/json",
            "text/plain",
            "",
        ]
    )
    | texts
)
header_names = st.sampled_from(
    [
        signature.HEADER,
        "Accept",
        "Content-Encoding",
        "Transfer-Encoding",
        "X-Forwarded-Proto",
        "Cookie",
        "Expect",
    ]
) | st.from_regex(r"X-[A-Za-z0-9-]{1,20}", fullmatch=True)
headers = st.dictionaries(header_names, header_texts, max_size=5)


@st.composite
def requests(draw):
    kind = draw(st.sampled_from(["form", "form", "bytes", "text"]))
    fields = None
    if kind == "form":
        fields = draw(forms)
        body = urlencode(list(fields.items())).encode()
    elif kind == "bytes":
        body = draw(st.binary(max_size=300))
    else:
        body = draw(texts).encode()
    sign = kind == "form" and draw(st.booleans())
    request_headers = draw(headers)
    content_type = FORM if sign else draw(content_types)
    if sign:
        request_headers[signature.HEADER] = signature.compute(fields, VERIFIER)
    extra = {}
    if draw(st.integers(0, 9)) == 0:
        # A wrong Content-Length: nonsense, or shorter than the body (a longer one would make a real
        # server wait for bytes that never come), or over the limit.
        extra["CONTENT_LENGTH"] = draw(
            st.sampled_from(["", "-1", "abc", "0", "99999999", str(64 * 1024 + 1)])
            | st.integers(0, len(body)).map(str)
        )
    method = draw(st.sampled_from(["POST"] * 8 + ["GET", "PUT", "DELETE", "PATCH"]))
    return method, body, content_type, request_headers, extra, sign


@pytest.mark.django_db
@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests())
def test_arbitrary_requests_never_500_and_unsigned_store_nothing(client, tenant, request):
    account = (
        connected_account(tenant, ACCOUNT_ID, BUSINESS_ID)
        if not tenant.freshbooks_accounts.exists()
        else None
    )
    if account is not None:
        FreshBooksWebhook.objects.create(
            account=account, callback_id=1001, event="invoice.create", uri="https://x.test/", verifier=VERIFIER,
            verified=True,
        )  # fmt: skip
    method, body, content_type, request_headers, extra, signed = request
    before = Event.objects.count()
    response = client.generic(method, URL, body, content_type=content_type, headers=request_headers, **extra)
    event(f"{'signed' if signed else 'unsigned'} → {response.status_code}")
    assert response.status_code < 500
    if not signed or method != "POST":
        assert Event.objects.count() == before, (response.status_code, response.content)
    else:
        # Signed with the right verifier, but the fields may name another account or be malformed.
        assert response.status_code in (200, 400, 401, 404, 413), response.content
        # A signed delivery already received is a replay: acknowledged, not stored again.
        stored = response.status_code == 200 and response.json().get("status") != "replay"
        assert Event.objects.count() == before + stored
