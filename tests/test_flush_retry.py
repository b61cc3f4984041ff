"""The suite's own teardown: a flush that PostgreSQL failed to break a deadlock with a live
server's transaction is tried again; any other failure is not hidden."""

import pytest
from django.core.management.base import CommandError
from django.db.utils import OperationalError

from .conftest import _flush_again_after_a_deadlock


def failing_flush(errors):
    calls = []

    def flush(test_case):
        calls.append(test_case)
        if len(calls) <= len(errors):
            raise CommandError("Database couldn't be flushed.") from errors[len(calls) - 1]
        return "flushed"

    return flush, calls


def test_a_flush_that_lost_a_deadlock_is_tried_again(monkeypatch):
    monkeypatch.setattr("tests.conftest.time.sleep", lambda seconds: None)
    flush, calls = failing_flush(
        [OperationalError("deadlock detected"), OperationalError("deadlock detected")]
    )
    assert _flush_again_after_a_deadlock(flush)("the test") == "flushed"
    assert len(calls) == 3


def test_a_flush_that_keeps_losing_or_fails_otherwise_still_fails(monkeypatch):
    monkeypatch.setattr("tests.conftest.time.sleep", lambda seconds: None)
    flush, calls = failing_flush([OperationalError("deadlock detected")] * 3)
    with pytest.raises(CommandError):
        _flush_again_after_a_deadlock(flush)("the test")
    assert len(calls) == 3

    flush, calls = failing_flush([OperationalError("relation does not exist")])
    with pytest.raises(CommandError):
        _flush_again_after_a_deadlock(flush)("the test")
    assert len(calls) == 1
