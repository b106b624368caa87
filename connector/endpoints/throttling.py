"""Throttling of the webhook endpoints (DRF throttles).

A FreshBooks delivery refused for its signature is counted on the account it names
(FreshBooksAccount.rejected_deliveries, shown in the admin): a stale verifier or a forger shows up there. A flood
of forged posts must not become a database write per post, so the counting is throttled.
"""

from datetime import timedelta

from django.db.models import Case, F, Q, When
from django.utils import timezone
from rest_framework.throttling import SimpleRateThrottle

from tenants.models import FreshBooksAccount

MAX_REJECTED = 2**31 - 1  # the counter saturates instead of overflowing the column


class RejectedDeliveryThrottle(SimpleRateThrottle):
    """Count a refused delivery on `account_pks` at most at the rate of scope ``webhook_rejected``
    (REST_FRAMEWORK's DEFAULT_THROTTLE_RATES, "1/s": once a second per account).

    DRF's SimpleRateThrottle keeps its history in the cache, which is per process with Django's default cache:
    here the history is the account row itself (`last_rejected_at`, the time of the last counted refusal), which
    every web process shares, and one UPDATE both checks the rate and records the count. `allow_request` is True
    when the refusal was counted on at least one of the accounts."""

    scope = "webhook_rejected"

    def __init__(self, account_pks):
        super().__init__()
        self.account_pks = list(account_pks)

    def get_cache_key(self, request, view):
        return None  # no cache: the history is the account row

    def allow_request(self, request, view):
        now = timezone.now()
        accounts = FreshBooksAccount.objects.filter(pk__in=self.account_pks)
        if self.rate is not None:
            since = now - timedelta(seconds=self.duration / self.num_requests)
            accounts = accounts.filter(Q(last_rejected_at__isnull=True) | Q(last_rejected_at__lte=since))
        counted = accounts.update(
            rejected_deliveries=Case(
                When(rejected_deliveries__lt=MAX_REJECTED, then=F("rejected_deliveries") + 1),
                default=MAX_REJECTED,
            ),
            last_rejected_at=now,
        )
        return counted > 0
