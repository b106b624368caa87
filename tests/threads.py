"""One way to run work on several threads at once (concurrency tests, PostgreSQL): each thread has its own
database connection, closed when it ends; an exception in any thread fails the test."""

import threading

from django.db import connections


def run_in_threads(target, calls, *, together=False):
    """Call `target(*args)` on one thread per entry of `calls` (a list of argument tuples, or a count of calls
    without arguments); `together`: all start at the same moment (a barrier). Returns the results, in the order
    the calls finished; raises AssertionError listing the exceptions raised."""
    calls = [()] * calls if isinstance(calls, int) else list(calls)
    barrier = threading.Barrier(len(calls)) if together else None
    results, errors = [], []

    def run(*args):
        try:
            if barrier is not None:
                barrier.wait()
            results.append(target(*args))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=args) for args in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results
