"""Management commands check their arguments' ranges: a CommandError with the range, never a traceback."""

import pytest
from django.core.management import CommandError, call_command

from tests.processing import connected_account

HUGE = str(10**22)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, says",
    [
        (["rollback_event", HUGE, "--yes"], "an event id from 1 to"),
        (["rollback_event", "0", "--yes"], "an event id from 1 to"),
        (["replay_events", "--id", HUGE], "an event id from 1 to"),
        (["prune_audit", "--older-than", "99999999"], "a whole number of days from 1 to 36500"),
        (["prune_audit", "--older-than", HUGE], "a whole number of days from 1 to 36500"),
        (["prune_audit", "--older-than", "0"], "a whole number of days from 1 to 36500"),
        (["prune_audit", "--older-than", "5", "--batch-size", HUGE], "a batch size from 1 to 10000"),
        (["rotate_keys", "--batch-size", HUGE], "a batch size from 1 to 10000"),
        (["rotate_keys", "--batch-size", "0"], "a batch size from 1 to 10000"),
        (["replay_events", "--since", "0001-01-01"], "before 1970-01-01"),
        (
            ["replay_events", "--since", "2024-02-01", "--until", "2024-01-01"],
            "--since must be before --until",
        ),
        (["reconcile", "--tenant", "acme", "--since", "0001-01-01", "--dry-run"], "before 1970-01-01"),
    ],
)
def test_out_of_range_arguments_are_command_errors(tenant, args, says):
    connected_account(tenant)
    with pytest.raises(CommandError) as refused:
        call_command(*args)
    assert says in str(refused.value)
