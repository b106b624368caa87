"""The parsers of the webhook endpoints (DRF parsers): each reads the body, at most its view's limit
(connector.endpoints.base.read_body), and keeps the raw bytes beside what it parsed.

- `FreshBooksFormParser`: FreshBooks posts application/x-www-form-urlencoded and signs ``json.dumps`` of the
  fields *in body order* (connector.freshbooks.signature), so the fields stay in body order (a dict), a repeated
  field is refused, and the body must be a FreshBooks delivery: `FormBody`, or ParseError (400).
- `JiraBodyParser`: Jira posts JSON; the admin webhook's X-Hub-Signature covers the raw body, so the JSON is
  decoded only when asked (`JiraBody.json()`), after the signature was checked.

An empty body (Content-Length 0 or none) is not given to a parser by DRF: `form_body` and `jira_body` stand in.
"""

import json
import re
from dataclasses import dataclass, field

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from connector import kinds
from connector.endpoints.base import read_body
from connector.freshbooks import signature

FORM = "application/x-www-form-urlencoded"
REQUIRED = ("name", "object_id", "account_id")
CLEAR = (
    *REQUIRED,
    "business_id",
)  # the fields stored in clear (Event.name, object_id, account_id, business_id)
MAX_LENGTH = 64  # of the fields stored in clear
MAX_FIELD_LENGTH = 1024  # of any other field (FreshBooks sends short ids, names and a verifier)
FRESHBOOKS_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits only: str.isdigit() also accepts "²"


@dataclass(frozen=True)
class FormBody:
    """A FreshBooks delivery: its form fields (str → str, in body order) and the raw body."""

    fields: dict
    raw: bytes = b""


def check_delivery(fields):
    """`fields` when they make a FreshBooks delivery; ParseError (400) naming what is missing or wrong."""
    missing = [name for name in REQUIRED if not fields.get(name)]
    if missing:
        raise ParseError(f"Missing fields: {', '.join(missing)}.")
    too_long = [k for k in CLEAR if len(fields.get(k, "")) > MAX_LENGTH]
    too_long += [k for k, v in fields.items() if k not in CLEAR and len(v) > MAX_FIELD_LENGTH]
    if too_long:
        raise ParseError(f"Fields too long: {', '.join(too_long[:10])}.")
    if not FRESHBOOKS_ID.fullmatch(fields["object_id"]):
        raise ParseError("object_id must be a FreshBooks id (ASCII digits).")
    if fields["name"] != "callback.verify" and kinds.kind_for(fields["name"]) is None:
        raise ParseError(f"Unknown event {fields['name']}: no FreshBooks kind of the connector declares it.")
    return fields


class FreshBooksFormParser(BaseParser):
    media_type = FORM

    def parse(self, stream, media_type=None, parser_context=None):
        raw = read_body(stream, parser_context["request"].META, parser_context["view"].max_body())
        try:
            fields = signature.parse_form(raw)
        except signature.MalformedForm as exc:
            raise ParseError(f"Malformed form body: {exc}") from None
        return FormBody(check_delivery(fields), raw)


def form_body(request):
    """The `FormBody` of a FreshBooks delivery (`request.data`; an empty body has no fields: 400)."""
    data = request.data
    return data if isinstance(data, FormBody) else FormBody(check_delivery({}))


@dataclass
class JiraBody:
    """A Jira delivery's raw body; `json()` decodes it once: the webhook's JSON object, or ParseError (400)."""

    raw: bytes
    _data: dict | None = field(default=None, repr=False)

    def json(self):
        if self._data is None:
            self._data = _webhook_json(self.raw)
        return self._data


def _webhook_json(raw):
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        data = None
    if not (isinstance(data, dict) and isinstance(data.get("webhookEvent"), str)):
        raise ParseError("Body is not a Jira webhook.")
    return data


class JiraBodyParser(BaseParser):
    media_type = "*/*"  # Jira sends application/json; the content type was never a reason to refuse one

    def parse(self, stream, media_type=None, parser_context=None):
        return JiraBody(read_body(stream, parser_context["request"].META, parser_context["view"].max_body()))


def jira_body(request):
    """The `JiraBody` of a Jira delivery (`request.data`; an empty body is not a Jira webhook)."""
    data = request.data
    return data if isinstance(data, JiraBody) else JiraBody(b"")
