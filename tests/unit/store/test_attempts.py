"""Identification attempts terminal-wide: open ones count as failed, a reset forgets, the pause persists."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from terminal.clock import CST
from terminal.store.attempts import AttemptJournal
from terminal.store.db import open_db

T0 = datetime(2025, 6, 3, 9, 30, tzinfo=CST)


def test_open_and_failed_attempts_count_passed_ones_do_not(tmp_path: Path) -> None:
    journal = AttemptJournal(open_db(tmp_path))
    passed = journal.begin("S1", "face", T0)
    journal.end(passed, "pass", "match")
    journal.begin("S1", "face", T0 + timedelta(minutes=1))  # abandoned: never ended
    failed = journal.begin("S2", "face", T0 + timedelta(minutes=2))
    journal.end(failed, "fail", "liveness")
    journal.failed("S2", "credential", T0 + timedelta(minutes=3), "unknown QR token")
    assert journal.failures_since(T0) == 3
    assert journal.failures_since(T0 + timedelta(minutes=2)) == 2, "the moment itself counts"
    assert journal.failures_since(T0 + timedelta(minutes=4)) == 0


def test_an_ended_attempt_is_not_ended_again(tmp_path: Path) -> None:
    journal = AttemptJournal(open_db(tmp_path))
    attempt = journal.begin("S1", "face", T0)
    journal.end(attempt, "fail", "cancelled")
    journal.end(attempt, "pass", "late")
    assert journal.failures_since(T0) == 1
    assert journal.recent(5)[0]["detail"] == "cancelled"


def test_pause_and_reset_survive_reopening(tmp_path: Path) -> None:
    journal = AttemptJournal(open_db(tmp_path))
    assert journal.pause() == (None, None)
    journal.set_pause(T0 + timedelta(minutes=10))
    again = AttemptJournal(open_db(tmp_path))
    assert again.pause() == (T0 + timedelta(minutes=10), None)
    again.reset(T0 + timedelta(minutes=5))
    assert AttemptJournal(open_db(tmp_path)).pause() == (None, T0 + timedelta(minutes=5))
