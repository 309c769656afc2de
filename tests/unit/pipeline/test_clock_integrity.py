"""The clock check: refused when off the upstream's by more than the skew, or set back behind the records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from terminal.clock import CST
from terminal.errors import ClockBackwardsError, ClockSkewError
from terminal.pipeline.clock_integrity import BACKWARDS_GRACE, ClockGuard, clock_problem
from terminal.uplink.client import upstream_time
from tests.fakes import FixedClock

NOW = datetime(2025, 6, 3, 9, 30, tzinfo=CST)


@dataclass(frozen=True)
class Facts:
    offset_s: float | None = None
    latest_recorded: datetime | None = None


def test_a_fresh_terminal_has_nothing_to_compare_and_may_settle() -> None:
    assert clock_problem(NOW, Facts(), 300) is None


@pytest.mark.parametrize("offset", [301.0, -301.0, 86400.0])
def test_a_clock_off_the_upstreams_by_more_than_the_skew_is_refused(offset: float) -> None:
    problem = clock_problem(NOW, Facts(offset_s=offset), 300)
    assert isinstance(problem, ClockSkewError)
    assert ("behind" if offset > 0 else "ahead of") in str(problem)


@pytest.mark.parametrize("offset", [0.0, 299.9, -300.0])
def test_a_clock_within_the_skew_may_settle(offset: float) -> None:
    assert clock_problem(NOW, Facts(offset_s=offset), 300) is None


def test_a_clock_set_back_behind_the_latest_record_is_refused() -> None:
    problem = clock_problem(NOW - timedelta(hours=1), Facts(latest_recorded=NOW), 300)
    assert isinstance(problem, ClockBackwardsError)
    assert "set back" in str(problem)


def test_a_step_back_inside_the_grace_is_not_a_clock_set_back() -> None:
    assert clock_problem(NOW - BACKWARDS_GRACE, Facts(latest_recorded=NOW), 300) is None
    assert clock_problem(NOW - BACKWARDS_GRACE - timedelta(seconds=1), Facts(latest_recorded=NOW), 300)


def test_going_backwards_is_caught_even_when_the_upstream_agrees() -> None:
    # Set back and then synced with an upstream that agrees: the records still say time went backwards.
    problem = clock_problem(NOW - timedelta(days=1), Facts(offset_s=0.0, latest_recorded=NOW), 300)
    assert isinstance(problem, ClockBackwardsError)


def test_the_guard_reads_the_facts_afresh_each_time() -> None:
    facts = [Facts()]
    guard = ClockGuard(lambda: facts[0], FixedClock(NOW), 300)
    guard.require_settleable()
    facts[0] = Facts(offset_s=900.0)
    with pytest.raises(ClockSkewError):
        guard.require_settleable()


def test_the_upstreams_respond_time_is_read_as_beijing_time() -> None:
    assert upstream_time("20250603093000123") == datetime(2025, 6, 3, 9, 30, 0, 123000, tzinfo=CST)
    assert upstream_time("") is None and upstream_time("not a time") is None
