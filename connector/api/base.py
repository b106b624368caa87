"""What every operator API view shares, set on the views themselves (not through DRF's DEFAULT_* settings, which
the webhook endpoints shape for their own needs): authentication, permissions, JSON in and out, throttling,
DRF's own exception handler (`{"detail": …}` and field errors), pagination and django-filter."""

from django.contrib.admin.models import CHANGE, LogEntry
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import APIException
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.views import exception_handler

from connector.api.authentication import ApiTokenAuthentication
from connector.api.permissions import READ
from connector.api.throttling import ApiActionThrottle, ApiUserThrottle


class Page(PageNumberPagination):
    """`?page=2&page_size=100` (at most 500); answers {count, next, previous, results}."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class Conflict(APIException):
    status_code = 409
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class ApiSettings:
    authentication_classes = [ApiTokenAuthentication, SessionAuthentication]
    permission_classes = READ
    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser]
    throttle_classes = [ApiUserThrottle, ApiActionThrottle]
    content_negotiation_class = DefaultContentNegotiation
    pagination_class = Page
    filter_backends = [DjangoFilterBackend]
    metadata_class = None
    versioning_class = None

    def get_exception_handler(self):
        return exception_handler


def actor(request):
    """Who asked, as recorded on events and attempts: "api:<username>" (the admin writes "admin:<username>")."""
    return f"api:{request.user.get_username()}"


def record(request, obj, message):
    """Note the action in the admin's history of `obj` (the object's "History" page), as its admin action does."""
    LogEntry.objects.log_actions(
        user_id=request.user.pk,
        queryset=[obj],
        action_flag=CHANGE,
        change_message=message,
        single_object=True,
    )
