"""The clock check wired to a terminal: what each sync records, what settling and readiness check."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

import sqlite_utils

from terminal.pipeline.checkout import StoreCheck
from terminal.pipeline.clock_integrity import ClockGuard
from terminal.ports import Clock
from terminal.store.clock_facts import clock_facts, record_upstream_time


def clock_guard(db: sqlite_utils.Database, clock: Clock, max_skew_s: float) -> ClockGuard:
    """The guard over this terminal's database and clock."""
    return ClockGuard(lambda: clock_facts(db), clock, max_skew_s)


def time_recorder(
    db: sqlite_utils.Database, clock: Clock, lock: threading.RLock | None = None
) -> Callable[[datetime], None]:
    """What an uplink calls with the upstream's time: the offset is measured on arrival and stored."""

    def record(upstream: datetime) -> None:
        local = clock.now()  # taken before waiting for the lock: the offset is the answer's, not the wait's
        if lock is None:
            record_upstream_time(db, upstream, local)
            return
        with lock:
            record_upstream_time(db, upstream, local)

    return record


class SettleChecks:
    """Every check that must pass before money is recorded: the store's state, then the clock."""

    def __init__(self, *checks: StoreCheck) -> None:
        self._checks = checks

    def require_settleable(self) -> None:
        """Raise the first check's error (storage, then clock); nothing when all pass."""
        for check in self._checks:
            check.require_settleable()


def clock_line(guard: ClockGuard, db: sqlite_utils.Database) -> str:
    """The clock's state in one line for doctor and readiness; ClockError when it cannot be trusted."""
    problem = guard.problem()
    if problem is not None:
        raise problem
    facts = clock_facts(db)
    if facts.offset_s is None:
        return "not yet compared with an upstream (no sync yet); never behind the latest record"
    return f"{facts.offset_s:+.1f} s from the upstream's at the last sync (at most ±{guard.max_skew_s:g} s)"
