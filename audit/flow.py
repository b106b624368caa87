"""The flow chart: per tenant, events per hour by outcome over the last 7 days, as an inline SVG (no library).

`flows(tenants, now=None)` → {tenant id: Flow} in one GROUP BY query (tenant, hour received, status) whatever the
number of events; `Flow.bars()` gives the chart's geometry for templates/admin/audit/flow_chart.html. Hours are
UTC clock hours; an event counts in the hour it was received, under its outcome now:
succeeded, skipped (also duplicates), failed (also resolved without retry) or waiting. Events still queued or
processing, and rolled-back ones, are not drawn.
"""

from dataclasses import dataclass, field
from datetime import UTC, timedelta

from django.db.models import Count
from django.db.models.functions import TruncHour
from django.utils import timezone

from audit.models import Event

HOURS = 7 * 24
OUTCOMES = ("succeeded", "skipped", "failed", "waiting")  # bottom to top
OUTCOME_OF = {
    Event.Status.SUCCEEDED: "succeeded",
    Event.Status.SKIPPED: "skipped",
    Event.Status.DUPLICATE: "skipped",
    Event.Status.FAILED: "failed",
    Event.Status.RESOLVED: "failed",
    Event.Status.WAITING: "waiting",
}
COLOURS = {"succeeded": "#2e7d32", "skipped": "#9e9e9e", "failed": "#c62828", "waiting": "#f9a825"}
WIDTH, HEIGHT, BAR = 672, 120, 4  # px: 168 bars of 4 px


@dataclass
class Flow:
    start: object  # aware datetime, UTC, the first hour drawn
    counts: dict = field(default_factory=dict)  # hour index (0..167) → {outcome: count}

    def totals(self):
        """[(outcome, count as text "1,234", colour)] over the 7 days."""
        return [
            (outcome, f"{sum(hour.get(outcome, 0) for hour in self.counts.values()):,}", COLOURS[outcome])
            for outcome in OUTCOMES
        ]

    def context(self, tenant, show_name=False):
        """The template's context (templates/admin/audit/flow_chart.html)."""
        return {
            "tenant": tenant,
            "show_name": show_name,
            "totals": self.totals(),
            "bars": self.bars(),
            "days": self.days(),
            "peak": f"{self.peak:,}",
            "width": WIDTH,
            "height": HEIGHT,
            "middle": WIDTH // 2 + 36,
            "middle_y": HEIGHT // 2,
        }

    @property
    def peak(self):
        return max((sum(hour.values()) for hour in self.counts.values()), default=0)

    def bars(self):
        """[{x, title, segments: [{y, height, colour}]}] of the hours with events, stacked bottom to top."""
        peak = self.peak or 1
        found = []
        for index in sorted(self.counts):
            hour, y, segments = self.counts[index], HEIGHT, []
            for outcome in OUTCOMES:
                count = hour.get(outcome, 0)
                if not count:
                    continue
                height = max(1.0, count * HEIGHT / peak)
                y -= height
                segments.append({"y": round(y, 1), "height": round(height, 1), "colour": COLOURS[outcome]})
            when = self.start + timedelta(hours=index)
            parts = ", ".join(f"{hour[o]:,} {o}" for o in OUTCOMES if hour.get(o))
            found.append(
                {"x": index * BAR, "title": f"{when:%a %d %b %H:00} UTC: {parts}", "segments": segments}
            )
        return found

    def days(self):
        """[(x, label)] at each midnight UTC inside the chart."""
        marks = []
        for index in range(HOURS):
            when = self.start + timedelta(hours=index)
            if when.hour == 0:
                marks.append((index * BAR, f"{when:%a %d}"))
        return marks


def window(now=None):
    """The first hour of the chart: the clock hour 167 hours before the current one (UTC)."""
    now = (now or timezone.now()).astimezone(UTC)
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)


def flows(tenants, now=None):
    """{tenant id: Flow} for the given tenants (a queryset or list of ids), one query."""
    start = window(now)
    found = {getattr(t, "pk", t): Flow(start) for t in tenants}
    rows = (
        Event.objects.filter(tenant__in=list(found), received_at__gte=start, status__in=list(OUTCOME_OF))
        .annotate(hour=TruncHour("received_at", tzinfo=UTC))
        .values("tenant", "hour", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        index = int((row["hour"] - start).total_seconds() // 3600)
        if 0 <= index < HOURS:
            hour = found[row["tenant"]].counts.setdefault(index, {})
            outcome = OUTCOME_OF[row["status"]]
            hour[outcome] = hour.get(outcome, 0) + row["n"]
    return found
