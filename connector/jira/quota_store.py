"""Where Jira's rate-limit state is shared between every worker process on every host: the database
(connector.QuotaState rows), or Redis when REDIS_URL is set. connector.jira.quota decides; this only keeps.

Shapes (times are epoch seconds, floats; `scope` a string as connector.QuotaState documents):
- ``pauses(scopes, now)`` → {scope: (until, reason)} of the pauses among `scopes` still in force (one read);
  ``paused(scopes, now)`` → the latest of them (``latest``), or None.
- ``pause(scope, until, reason)``: no call under `scope` before `until` (a later pause already kept wins).
- ``reserve(scope, windows, now, interval=0)`` → seconds the caller must wait before its call; the call is
  counted at that moment. `windows`: ((seconds, most calls), …), e.g. ((2, 18), (30, 95)); `interval`: at
  least this many seconds after the previous reserved call.
- ``remember(scope, remaining, limit)`` / ``remaining(scope)`` → (remaining, limit, when) or None: Jira's
  last remaining-quota figure for a pool; `limit` None (a figure sent without its policy) keeps the one before.
"""

import json
import os
import time
from datetime import UTC, datetime

from django.conf import settings
from django.db import IntegrityError, transaction

from connector.models import QuotaState


def _moment(epoch):
    return datetime.fromtimestamp(epoch, UTC)


def next_slot(slots, windows, now, interval=0.0):
    """The earliest time ≥ now, and not before the last slot (reservations are handed out in order, so only earlier
    slots count), at which one more call keeps every window's count and the interval after the last slot."""
    at = max(now, max(slots) + interval) if slots else now
    for _ in range(200):  # bounded: each round moves `at` past one slot
        moved = False
        for seconds, most in windows:
            inside = sorted(s for s in slots if at - seconds < s <= at + 1e-9)
            if len(inside) >= most:
                at = inside[len(inside) - most] + seconds + 1e-3
                moved = True
        if not moved:
            return at
    return at


def latest(found):
    """The (until, reason) with the latest `until` among the values of `found` ({scope: (until, reason)}), or None."""
    return max(found.values()) if found else None


class _Store:
    def paused(self, scopes, now):
        return latest(self.pauses(scopes, now))


class DatabaseStore(_Store):
    def pauses(self, scopes, now):
        rows = QuotaState.objects.filter(scope__in=list(scopes), until__gt=_moment(now))
        return {
            scope: (until.timestamp(), reason)
            for scope, until, reason in rows.values_list("scope", "until", "reason")
        }

    def _row(self, scope):
        try:
            with transaction.atomic():
                return QuotaState.objects.get_or_create(scope=scope)[0]
        except IntegrityError:  # created by another worker meanwhile
            return QuotaState.objects.get(scope=scope)

    def pause(self, scope, until, reason):
        self._row(scope)
        moment = _moment(until)
        QuotaState.objects.filter(scope=scope).exclude(until__gt=moment).update(
            until=moment, reason=reason[:100]
        )

    def reserve(self, scope, windows, now, interval=0.0):
        self._row(scope)
        keep = max(seconds for seconds, _ in windows) if windows else 0
        with transaction.atomic():
            row = QuotaState.objects.select_for_update().get(scope=scope)
            slots = [s for s in row.slots or [] if s > now - max(keep, interval)]
            at = next_slot(slots, windows, now, interval)
            row.slots = sorted([*slots, at])
            row.save(update_fields=["slots", "updated_at"])
        return at - now

    def remember(self, scope, remaining, limit):
        self._row(scope)
        values = {"remaining": remaining} if limit is None else {"remaining": remaining, "limit": limit}
        QuotaState.objects.filter(scope=scope).update(**values)

    def remaining(self, scope):
        row = QuotaState.objects.filter(scope=scope, remaining__isnull=False).first()
        return (row.remaining, row.limit, row.updated_at.timestamp()) if row else None


class RedisStore(_Store):
    """The same in Redis: a pause is a key that expires with it; pacing slots a sorted set, changed under a
    short Redis lock per scope."""

    def __init__(self, url):
        import redis

        self.redis = redis.Redis.from_url(url)

    @staticmethod
    def key(scope):
        return f"mlc:quota:{scope}"

    def pauses(self, scopes, now):
        scopes = list(scopes)
        found = {}
        raws = self.redis.mget([self.key(s) + ":pause" for s in scopes]) if scopes else []
        for scope, raw in zip(scopes, raws, strict=True):
            if raw:
                until, reason = json.loads(raw)
                if until > now:
                    found[scope] = (until, reason)
        return found

    def pause(self, scope, until, reason):
        key = self.key(scope) + ":pause"
        with self.redis.lock(key + ":lock", timeout=5, blocking_timeout=5):
            raw = self.redis.get(key)
            if raw and json.loads(raw)[0] >= until:
                return
            ttl = max(1, int(until - time.time()) + 1)
            self.redis.set(key, json.dumps([until, reason[:100]]), ex=ttl)

    def reserve(self, scope, windows, now, interval=0.0):
        key = self.key(scope) + ":slots"
        keep = max([seconds for seconds, _ in windows] + [interval])
        with self.redis.lock(key + ":lock", timeout=5, blocking_timeout=5):
            self.redis.zremrangebyscore(key, "-inf", now - keep)
            slots = [score for _, score in self.redis.zrange(key, 0, -1, withscores=True)]
            at = next_slot(slots, windows, now, interval)
            self.redis.zadd(key, {f"{at!r}:{os.urandom(4).hex()}": at})
            self.redis.expire(key, int(keep) + 60)
        return at - now

    def remember(self, scope, remaining, limit):
        key = self.key(scope) + ":remaining"
        if limit is None:  # a figure without its policy: the limit kept before stays (as in the database)
            kept = self.redis.get(key)
            limit = json.loads(kept)[1] if kept else None
        self.redis.set(key, json.dumps([remaining, limit, time.time()]), ex=7200)

    def remaining(self, scope):
        raw = self.redis.get(self.key(scope) + ":remaining")
        return tuple(json.loads(raw)) if raw else None


_stores = {}


def store():
    """The store for this deployment: Redis when REDIS_URL is set, else the database."""
    url = settings.REDIS_URL
    if url not in _stores:
        _stores[url] = RedisStore(url) if url else DatabaseStore()
    return _stores[url]
