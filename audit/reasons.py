"""The reason of a failure: what groups failed events in the Failed events list (stored on audit.Event)."""

import re

MAX_REASON = 200  # characters kept (audit.Event.failure_reason)

# What makes two failure details differ without changing their reason: ids, issue keys, retry counters.
REASON_NOISE = (
    (re.compile(r" — (automatic retry|gave up after).*", re.S), ""),
    (re.compile(r"\b[A-Z][A-Z0-9_]+-\d+\b"), "<issue>"),
    (re.compile(r"\d{4,}|\b\d+(\.\d+)? s\b"), "<n>"),
)


def failure_reason(detail):
    """The reason of a failure, for grouping: its detail's first line without ids, keys or retry counters."""
    text = (detail or "").strip().splitlines()[0] if (detail or "").strip() else "(no detail)"
    for pattern, replacement in REASON_NOISE:
        text = pattern.sub(replacement, text)
    return text.strip()[:MAX_REASON]
