"""DRF's user-rate throttling for the operator API: every call counts against API_THROTTLE_RATE per user;
actions (POST) also against API_ACTION_THROTTLE_RATE. Rates read "<n>/<second|minute|hour|day>"; counts live in
Django's default cache (per process unless a shared cache is configured). Over the rate: 429 with Retry-After."""

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import UserRateThrottle


class ApiUserThrottle(UserRateThrottle):
    scope = "api"

    def get_rate(self):
        return settings.API_THROTTLE_RATE or None


class ApiActionThrottle(UserRateThrottle):
    scope = "api_action"

    def get_rate(self):
        return settings.API_ACTION_THROTTLE_RATE or None

    def allow_request(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)
