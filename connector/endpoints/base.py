"""The base of every inbound webhook endpoint: read → parse → verify → deduplicate → store → enqueue.

A vendor endpoint fills in the steps; the base owns what every sender shares:
- POST only; the body is read up to the sender's size limit (`max_body_setting`, bytes: WEBHOOK_MAX_BODY for
  FreshBooks, JIRA_WEBHOOK_MAX_BODY for Jira), else 413 — a larger declared Content-Length before reading any;
  an optional content type (`content_type`, else 415);
- one JSON error shape for every refusal: ``{"error": "<what is wrong>"}`` with a 4xx status, raised as
  `Refused(status, message)` by any step; nothing is stored for a refused delivery;
- the deduplicate/store/enqueue steps run in one short transaction;
- every answer is counted in mlc_deliveries_total by sender, result and reason (audit.metrics).

The answer to an accepted delivery is the step `store`'s dict, as JSON with 200.
"""

from django.conf import settings
from django.db import transaction
from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from audit import metrics


class Refused(Exception):
    """Refuse the delivery with `status` (4xx) and a message the sender can read; nothing is stored."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def error(status, message):
    """The one JSON error shape of the inbound endpoints."""
    return JsonResponse({"error": message}, status=status)


@method_decorator(csrf_exempt, name="dispatch")
class InboundEndpoint(View):
    http_method_names = ["post"]
    sender = ""  # e.g. "FreshBooks", for messages
    max_body_setting = "WEBHOOK_MAX_BODY"  # the setting naming this sender's body limit in bytes
    content_type = None  # e.g. "application/x-www-form-urlencoded"; None accepts any

    def dispatch(self, request, *args, **kwargs):
        response = super().dispatch(request, *args, **kwargs)
        metrics.count_delivery(self.sender.lower(), response.status_code)  # mlc_deliveries_total
        return response

    def http_method_not_allowed(self, request, *args, **kwargs):
        response = error(405, "Only POST.")
        response["Allow"] = "POST"
        return response

    def post(self, request, **kwargs):
        try:
            body = self.read(request)
            delivery = self.parse(request, body, **kwargs)
            early = self.verify(request, delivery)
            if early is not None:  # a step that answers itself (e.g. a handshake)
                return JsonResponse(early)
            with transaction.atomic():
                answer = self.store(delivery, self.deduplicate(delivery))
        except Refused as refused:
            return error(refused.status, str(refused))
        return JsonResponse(answer)

    # --- shared steps --------------------------------------------------------------------------------

    def read(self, request):
        """The raw body, at most the sender's limit. Refused: 400 bad length or cut short, 413, 415."""
        limit = getattr(settings, self.max_body_setting)
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise Refused(400, "Bad Content-Length.") from None
        if declared > limit:
            raise Refused(413, f"Body larger than {limit} bytes.")
        if self.content_type and not self.accepts(request):
            raise Refused(415, f"Expected {self.content_type}.")
        try:
            body = request.read(limit + 1)
        except OSError:  # the sender went away mid-body (Django's UnreadablePostError)
            raise Refused(400, "Incomplete body.") from None
        if len(body) > limit:
            raise Refused(413, f"Body larger than {limit} bytes.")
        return body

    def accepts(self, request):
        return request.content_type == self.content_type

    # --- vendor steps --------------------------------------------------------------------------------

    def parse(self, request, body, **kwargs):
        """The delivery (any object the later steps understand), or Refused(400)."""
        raise NotImplementedError

    def verify(self, request, delivery):
        """Check who sent it (Refused 401/403/404). May return a dict to answer at once, storing nothing."""
        raise NotImplementedError

    def deduplicate(self, delivery):
        """Inside the transaction: what this delivery repeats (vendor-specific), or None."""
        return None

    def store(self, delivery, original):
        """Inside the transaction: store the event and enqueue (or do) its work; returns the JSON answer."""
        raise NotImplementedError
