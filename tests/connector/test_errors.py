"""The error family (connector.errors) and the retry policy (connector.retry) that reads it."""

import pytest

from connector import retry
from connector.errors import (
    ConnectorError,
    FreshBooksError,
    JiraError,
    LedgerError,
    ReconnectRequired,
    RenderError,
    TokenRefreshError,
    VendorError,
)


@pytest.mark.parametrize(
    ("error", "transient", "ambiguous", "needs_reconnect", "detail"),
    [
        (JiraError("Jira POST issue → 503", status=503, transient=True, ambiguous=True), True, True, False,
         "Jira POST issue → 503"),
        (FreshBooksError("FreshBooks GET … → 404", status=404), False, False, False, "FreshBooks GET … → 404"),
        (TokenRefreshError("token endpoint down"), True, False, False, "token endpoint down"),
        (ReconnectRequired("invalid_grant"), False, False, True, "Reconnect required: invalid_grant"),
        (RenderError("summary: bad"), False, False, False, "Mapping template: summary: bad"),
        (LedgerError("nothing to update"), False, False, False, "nothing to update"),
    ],
)  # fmt: skip
def test_each_error_says_what_to_do(error, transient, ambiguous, needs_reconnect, detail):
    assert isinstance(error, ConnectorError)
    assert (error.transient, error.ambiguous, error.needs_reconnect) == (
        transient,
        ambiguous,
        needs_reconnect,
    )
    assert error.detail == detail


def test_vendor_errors_are_one_family():
    for cls in (JiraError, FreshBooksError, TokenRefreshError, ReconnectRequired):
        assert issubclass(cls, VendorError)
    assert not issubclass(RenderError, VendorError) and not issubclass(LedgerError, VendorError)


def test_call_delay_honours_retry_after_within_the_caps():
    assert retry.call_delay(1, "7") == 7.0
    assert retry.call_delay(1, "7", budget=3.0) == 3.0  # never past what is left of the call's budget
    assert retry.call_delay(1, "3600") == retry.MAX_WAIT_SECONDS
    assert 1.0 <= retry.call_delay(1, "soon") <= 2.0  # unreadable: exponential with jitter (2**1 × 0.5–1)


def test_only_idempotent_calls_are_retried_after_5xx_or_no_answer_and_429_is_waited_out():
    assert retry.may_retry_call("GET", 1, 0.0, 503) and retry.may_retry_call("PUT", 2, 0.0, None)
    assert not retry.may_retry_call("GET", retry.IDEMPOTENT_TRIES, 0.0, 503)
    assert not retry.may_retry_call("POST", 1, 0.0, 503) and not retry.may_retry_call("POST", 1, 0.0, None)
    assert retry.may_retry_call("POST", retry.MAX_RATE_LIMIT_WAITS, 0.0, 429)
    assert not retry.may_retry_call("POST", retry.MAX_RATE_LIMIT_WAITS + 1, 0.0, 429)
    assert not retry.may_retry_call("GET", 1, retry.MAX_TOTAL_WAIT_SECONDS, 429)


def test_task_retry_delay_doubles_with_jitter_up_to_an_hour():
    for attempts, minutes in ((1, 1), (2, 2), (3, 4), (4, 8)):
        assert 0.8 * 60 * minutes <= retry.task_retry_delay(attempts) <= 1.2 * 60 * minutes
    assert retry.task_retry_delay(30) <= 1.2 * retry.RETRY_MAX_SECONDS
