"""The base of the inbound webhook endpoints, in Django REST framework's terms.

One delivery goes read → parse → verify → deduplicate → store (→ enqueue):
- read and parse: the view's parser (connector.endpoints.parsers) reads the body, at most the view's limit,
  and turns it into what the sender sent (FreshBooks' form fields in body order, or a Jira body);
- verify: the view's authentication class (connector.endpoints.authentication) identifies the sender and its
  tenant as ``request.auth``, or refuses (401/403/404/409);
- deduplicate and store: the view's steps, in one short transaction, passing a `Delivery` from step to step.

What every sender shares, checked in `initial` before authentication and before any of the body is read:
POST only (405); a Content-Length that is a number (400) and at most the view's limit (413: `max_body`, bytes,
WEBHOOK_MAX_BODY for FreshBooks, JIRA_WEBHOOK_MAX_BODY for Jira); the content type when the view names one
(415). While the body is read under gunicorn, the sender must keep sending: a pause longer than
WEBHOOK_BODY_TIMEOUT seconds ends the read with 408, so a stalled sender cannot hold a web worker.

Every refusal answers one JSON shape, ``{"error": "<what is wrong>"}`` with its 4xx/5xx status
(`exception_handler`, for these views only; the operator API keeps DRF's own shapes); nothing is stored for a
refused delivery. Every answer is counted in mlc_deliveries_total by sender, result and reason (audit.metrics).
The answer to an accepted delivery is the step `store`'s dict as JSON, with 200. Per-request overhead is kept
low: one renderer (JSON) chosen without reading Accept, no permission classes, no throttle classes.
"""

import contextlib
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView, set_rollback

from audit import metrics


class Refused(exceptions.APIException):
    """Refuse the delivery with `status` (4xx, or 503) and a message the sender can read; nothing is stored."""

    def __init__(self, status_code, message):
        super().__init__(message)
        self.status_code = status_code


class BadSignature(exceptions.AuthenticationFailed):
    """401: the delivery is not signed (or not signed by a known sender); answered with WWW-Authenticate."""


@dataclass
class Delivery:
    """One delivery on its way through the steps (built by `parse`, completed by `deduplicate`)."""

    payload: Any  # parse: FreshBooks' form fields (dict in body order) or the Jira webhook's JSON object
    sender: Any  # verify: request.auth, who sent it (connector.endpoints.authentication)
    delivery_id: str = ""  # the sender's id of the delivery, when it sends one (Jira)
    confirmation: Any = None  # what the vendor said about it before the transaction (Jira dynamic webhooks:
    # connector.jira.inbound.confirmation, as the body alone does not prove what changed)
    original: int | None = None  # deduplicate: the event still open for the same object
    replay_of: int | None = None  # deduplicate: the event of this very delivery, received before


def exception_handler(exc, context):
    """The one error answer of the webhook endpoints: ``{"error": message}`` with the exception's status.

    DRF's own exceptions keep their status (405, 415, 401 with WWW-Authenticate, 429 with
    Retry-After); Django's Http404 and PermissionDenied answer 404 and 403. Anything else is not a refusal:
    None lets DRF raise it (a server error)."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    set_rollback()
    return Response({"error": _first_message(exc.detail)}, status=exc.status_code, headers=headers)


def _first_message(detail):
    while isinstance(detail, dict | list) and detail:
        detail = next(iter(detail.values())) if isinstance(detail, dict) else detail[0]
    return str(detail)


class JSONOnly(BaseContentNegotiation):
    """The answer is always JSON and the parser is the view's own (its content type is checked in `initial`):
    nothing of Accept or Content-Type is parsed twice."""

    renderer = JSONRenderer()

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return self.renderer, self.renderer.media_type


class WebhookView(APIView):
    """A vendor endpoint sets `sender`, `max_body_setting`, `content_type`, its parser and its authentication
    class, and fills in the steps `parse`, `answer_early`, `deduplicate` and `store`."""

    http_method_names = ["post"]
    sender = ""  # e.g. "FreshBooks", the source label of mlc_deliveries_total (lower case)
    max_body_setting = "WEBHOOK_MAX_BODY"  # the setting naming this sender's body limit in bytes
    content_type = None  # e.g. "application/x-www-form-urlencoded"; None accepts any
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONOnly
    permission_classes = []  # the authentication class refuses whoever it cannot identify
    throttle_classes = []
    schema = None  # vendor-facing: not part of the operator API's OpenAPI schema (/api/schema/)

    def get_exception_handler(self):
        return exception_handler

    def dispatch(self, request, *args, **kwargs):
        response = super().dispatch(request, *args, **kwargs)
        metrics.count_delivery(self.sender.lower(), response.status_code)  # mlc_deliveries_total
        return response

    def initial(self, request, *args, **kwargs):
        """The envelope first (method, Content-Length, content type), then DRF's authentication."""
        if request.method.lower() not in self.http_method_names:
            raise exceptions.MethodNotAllowed(request.method, detail="Only POST.")
        limit = self.max_body()
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise Refused(400, "Bad Content-Length.") from None
        if declared > limit:
            raise Refused(413, f"Body larger than {limit} bytes.")
        if self.content_type and not self.accepts(request):
            raise Refused(415, f"Expected {self.content_type}.")
        super().initial(request, *args, **kwargs)

    def max_body(self):
        return getattr(settings, self.max_body_setting)

    def accepts(self, request):
        """Whether the content type is the view's (Django's parse of it: DRF's `content_type` keeps the params)."""
        return request._request.content_type == self.content_type

    def post(self, request, *args, **kwargs):
        delivery = self.parse(request)
        early = self.answer_early(delivery)
        if early is not None:  # a step that answers itself (a handshake): nothing stored as an event
            return Response(early)
        return Response(self.save(delivery))

    def save(self, delivery):
        """`deduplicate` and `store` in one short transaction; returns the JSON answer (a view may do both in
        one SQL statement instead)."""
        with transaction.atomic():
            self.deduplicate(delivery)
            return self.store(delivery)

    # --- vendor steps ----------------------------------------------------------------------------------

    def parse(self, request):
        """The `Delivery`: what the sender sent (from the parsed `request.data`; Refused 400 when it is not a
        delivery) and who sent it (`request.auth`)."""
        raise NotImplementedError

    def answer_early(self, delivery):
        """Before the transaction: a dict to answer at once, storing no event (a handshake), or None to go on
        to store; it may complete the delivery first (a vendor asked outside the transaction)."""
        return None

    def deduplicate(self, delivery):
        """Inside the transaction: set what this delivery repeats (`original`, `replay_of`), if anything."""

    def store(self, delivery):
        """Inside the transaction: store the event and enqueue (or do) its work; returns the JSON answer."""
        raise NotImplementedError


def read_body(stream, meta, limit):
    """The raw body (bytes) of the request whose body is `stream` and WSGI environ `meta`, at most `limit` bytes.

    Refused 413 when it is longer, 400 when it ends before its Content-Length, 408 when the sender pauses longer
    than WEBHOOK_BODY_TIMEOUT seconds (under gunicorn, whose socket the WSGI environ names; other servers bring
    their own timeouts)."""
    sock = meta.get("gunicorn.socket")
    previous = sock.gettimeout() if sock is not None else None
    try:
        if sock is not None:
            sock.settimeout(settings.WEBHOOK_BODY_TIMEOUT)
        body = stream.read(limit + 1)
    except OSError as exc:  # the sender went away mid-body (Django's UnreadablePostError) or stalled
        if isinstance(exc.__cause__, TimeoutError) or isinstance(exc, TimeoutError):
            raise Refused(status.HTTP_408_REQUEST_TIMEOUT, "Body not received in time.") from None
        raise Refused(400, "Incomplete body.") from None
    finally:
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(previous)
    if len(body) > limit:
        raise Refused(413, f"Body larger than {limit} bytes.")
    return body
