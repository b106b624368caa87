"""End to end with the real processes (see conftest): the worker SIGKILLed or SIGTERMed while it processes,
the web restarted during a burst. Nothing is lost, nothing is written twice."""

import time

from audit.models import Event
from tests.e2e.conftest import add_invoices, concurrently, wait_until

# A run cut short is taken over after the task timeout; django-q2 hands an unacknowledged task out again
# after `retry` seconds. Short here so the test waits seconds, not minutes (production: 300 / 420).
FAST_TAKEOVER = {"Q_TIMEOUT": 4, "Q_RETRY": 6}


def slow_issue_creation(jira, seconds):
    """Jira creates the issue, then answers only after `seconds` (the worker is caught mid-call)."""
    dispatch = type(jira).dispatch

    def slow(request):
        response = dispatch(jira, request)
        if request.method == "POST" and request.path.endswith("/rest/api/3/issue"):
            time.sleep(seconds)
        return response

    jira.dispatch = slow


def processing(stack):
    return wait_until(
        lambda: (
            Event.objects.filter(status=Event.Status.PROCESSING).exists()
            and stack.jira.calls("POST", r"/rest/api/3/issue$")
        ),
        30,
        "event processing",
    )


def test_worker_killed_mid_processing_every_event_processed_once_after_restart(make_stack, jira):
    stack = make_stack(**FAST_TAKEOVER)
    ids = range(720001, 720005)
    add_invoices(stack.fb, ids)
    slow_issue_creation(jira, 3.0)
    for n in ids:
        assert stack.deliver("invoice.create", n).status_code == 200
    processing(stack)

    stack.worker.kill()  # SIGKILL, the whole process group: Jira has the issue, the worker never saw the answer
    jira.dispatch = type(jira).dispatch.__get__(jira)
    stack.start_worker()

    events = stack.wait_processed(count=4, timeout=90)
    assert {e.status for e in events} == {Event.Status.SUCCEEDED}, [
        (e.status, e.status_detail) for e in events
    ]
    issues = stack.issues()
    assert len(issues) == 4, [i["key"] for i in issues]  # the issue created before the kill was adopted
    assert len({e.jira_key for e in events}) == 4


def test_worker_sigterm_stops_within_15_seconds_and_nothing_is_lost(make_stack, jira):
    stack = make_stack(**FAST_TAKEOVER)
    ids = range(730001, 730007)
    add_invoices(stack.fb, ids)
    slow_issue_creation(jira, 1.0)
    for n in ids:
        assert stack.deliver("invoice.create", n).status_code == 200
    processing(stack)

    took = stack.worker.stop(timeout=30)
    assert took is not None and took < 15, f"the worker took {took} s to stop after SIGTERM"
    jira.dispatch = type(jira).dispatch.__get__(jira)
    stack.start_worker()

    events = stack.wait_processed(count=6, timeout=90)
    assert {e.status for e in events} == {Event.Status.SUCCEEDED}, [
        (e.status, e.status_detail) for e in events
    ]
    assert len(stack.issues()) == 6


def test_web_restarted_during_a_burst_every_delivery_acknowledged_and_processed_once(make_stack):
    stack = make_stack()
    ids = list(range(740001, 740061))
    add_invoices(stack.fb, ids)

    def restart_midway():
        wait_until(lambda: Event.objects.count() >= 15, 30, "the burst under way")
        stack.web.stop(timeout=20)
        stack.start_web()

    # 8 senders; each delivery retried like FreshBooks until the web answers 200 (errors while it restarts).
    jobs = [("invoice.create", n, None, 60.0) for n in ids] + [(None, None, None, None)]
    answers = concurrently(
        lambda name, n, session, retry: (
            restart_midway() if name is None else stack.deliver(name, n, session, retry)
        ),
        jobs,
        threads=9,
    )
    assert [a.status_code for a in answers[:-1]] == [200] * len(ids)

    events = stack.wait_processed(count=len(ids), timeout=120)
    succeeded = [e for e in events if e.status == Event.Status.SUCCEEDED]
    assert {int(e.object_id) for e in succeeded} == set(ids)
    assert len(succeeded) == len(ids)
    assert len(stack.issues()) == len(ids)
