"""Argument types of the management commands: ranges checked where argparse reads them, so a value out of
range is a usage error (exit 2, or a CommandError through call_command) and never a traceback from the
database or the date arithmetic below it."""

import argparse
from datetime import UTC, datetime

from django.core.management.base import CommandError

ID_MAX = 2**63 - 1  # BigAutoField (PostgreSQL bigint, SQLite INTEGER)
BATCH_MAX = 10_000
DAYS_MAX = 36_500  # a hundred years
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


def whole_number(low, high, what="a whole number"):
    """An argparse type: an int in [low, high], else a usage error naming the range."""

    def parse(value):
        try:
            number = int(value)
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{what} from {low} to {high} is needed (got {value!r})")
        return number

    parse.__name__ = what  # argparse names the type in its message
    return parse


event_id = whole_number(1, ID_MAX, "an event id")
batch_size = whole_number(1, BATCH_MAX, "a batch size")
days = whole_number(1, DAYS_MAX, "a whole number of days")


def moment(text, option="--since"):
    """An ISO 8601 date or datetime (naive means UTC) from 1970 on → aware datetime; CommandError otherwise."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise CommandError(
            f"{option} {text!r} is not an ISO 8601 date or datetime (e.g. 2024-01-31)."
        ) from exc
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if parsed < EARLIEST:
        raise CommandError(f"{option} {text!r} is before 1970-01-01.")
    return parsed
