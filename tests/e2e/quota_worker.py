"""A worker process of tests/e2e/test_quota_processes.py, run as `python -m tests.e2e.quota_worker`: Django on
its environment (DATABASE_URL, and REDIS_URL when the quota store is Redis), then each line of its standard input
is an event id, processed as a django-q2 worker would (connector.tasks.process_event).

Prints one JSON line when ready, {"store": "DatabaseStore" | "RedisStore"}, then one per event,
{"event": id, "status": the status process_event returned}. Ends at the end of its input, or after MOST_EVENTS.
"""

import json
import sys

MOST_EVENTS = 50


def main():
    import django

    django.setup()
    from connector.jira.quota_store import store
    from connector.tasks import process_event

    print(json.dumps({"store": type(store()).__name__}), flush=True)
    for _, line in zip(range(MOST_EVENTS), sys.stdin, strict=False):
        event_id = int(line)
        print(json.dumps({"event": event_id, "status": process_event(event_id)}), flush=True)


if __name__ == "__main__":
    main()
