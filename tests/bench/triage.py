"""Triage benchmark (`make bench-triage`): the admin pages an operator opens on a bad day, with N failed events
(60,000 by default) spread over the last 7 days in a dedicated PostgreSQL database.

Times (median of --repeat runs, through Django's test client, one staff user): the Failed events list, the
same list filtered to its largest reason, the Events list and the admin index (health panel, flow chart).
The failures have 4 reasons, each with details that differ by ids and issue keys, as real failures do. Runs on any
version of the code (older ones have no stored reason), so the same script measures before and after.
Appends the figures to tests/bench/RESULTS.md.
"""

import argparse
import statistics
import time
from urllib.parse import quote

from tests.bench import common

DB = "mlc_bench_triage"
DETAILS = [
    "Jira POST /rest/api/3/issue → 400: customfield_{n}: Option id '{id}' is not valid",
    "Jira PUT /rest/api/3/issue/FIN-{id} → 404: Issue does not exist or you do not have permission to see it.",
    "FreshBooks GET invoices/{id} → 404: not found",
    "Jira POST /rest/api/3/issue → 400: issuetype: Specify a valid issue type",
]


def seed_failures(count):
    from django.db import connection
    from django.utils import timezone

    from audit.models import Event
    from tenants.models import Tenant

    tenant = Tenant.objects.create(name="Bench", slug=common.TENANT_SLUG)
    stored_reason = any(f.name == "failure_reason" for f in Event._meta.get_fields())
    if stored_reason:
        from audit.reasons import failure_reason
    batch = []
    for i in range(count):
        detail = DETAILS[i % len(DETAILS)].format(n=10000 + i % 10, id=100000 + i)
        event = Event(tenant=tenant, name="invoice.create", object_id=str(100000 + i), status="failed",
                      status_detail=detail, account_id="bench")  # fmt: skip
        if stored_reason:
            event.failure_reason = failure_reason(detail)
        batch.append(event)
        if len(batch) == 5000:
            Event.objects.bulk_create(batch)
            batch = []
    Event.objects.bulk_create(batch)
    with connection.cursor() as cursor:  # spread over the last 7 days (10,080 minutes)
        cursor.execute(
            "UPDATE audit_event SET received_at = %s - (id %% 10080) * interval '1 minute'", [timezone.now()]
        )
        cursor.execute("ANALYZE audit_event")


def timed(client, url, repeat):
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(url)
        runs.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code}")
    return statistics.median(runs), response


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--failures", type=int, default=60000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database", default=DB)
    parser.add_argument("--label", default="", help="e.g. 'before' or 'after', printed with the figures")
    args = parser.parse_args(argv)
    if not 1 <= args.failures <= 1_000_000 or not 1 <= args.repeat <= 50:
        raise SystemExit("--failures 1..1,000,000 and --repeat 1..50")
    url = common.database_url(args.database)
    common.setup_django(url)
    common.prepare(url)

    from django.contrib.auth import get_user_model
    from django.test import Client

    seed_failures(args.failures)
    user = get_user_model().objects.create_superuser("bench", "bench@example.test", "bench-pass-123")
    client = Client(HTTP_HOST=common.HOST)
    client.force_login(user)
    pages = {
        "Failed events": "/admin/audit/failedevent/",
        "Failed events, one reason": f"/admin/audit/failedevent/?reason={quote(DETAILS[3])}",
        "Events": "/admin/audit/event/",
        "Admin index": "/admin/",
    }
    label = f" ({args.label})" if args.label else ""
    lines = [f"{args.failures:,} failed events over 7 days, median of {args.repeat}{label}:"]
    for name, page in pages.items():
        seconds, _ = timed(client, page, args.repeat)
        lines.append(f"  {name}: {seconds * 1000:.0f} ms")
    common.record("Triage (make bench-triage)", lines)


if __name__ == "__main__":
    main()
