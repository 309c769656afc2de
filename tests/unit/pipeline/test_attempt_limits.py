"""Attempt limits: per checkout when attempts start, terminal-wide in a sliding window with a pause."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from terminal.errors import AttemptsExhaustedError, CredentialAttemptsError, FacePausedError
from terminal.pipeline.attempt_limits import CheckoutAttempts, PauseRule, TerminalAttempts
from terminal.store.attempts import AttemptJournal
from terminal.store.db import open_db
from tests.fakes import FixedClock

RULE = PauseRule(failures=3, window=timedelta(minutes=10), pause=timedelta(minutes=5))


def _limits(tmp_path: Path, clock: FixedClock) -> TerminalAttempts:
    return TerminalAttempts(AttemptJournal(open_db(tmp_path)), clock, RULE)


def test_a_checkout_spends_face_attempts_when_they_start() -> None:
    attempts = CheckoutAttempts(face_limit=2, credential_limit=1)
    attempts.start_face()
    attempts.start_face()
    assert attempts.face_remaining == 0
    with pytest.raises(AttemptsExhaustedError, match="QR code, card"):
        attempts.start_face()
    attempts.enter_credential()
    with pytest.raises(CredentialAttemptsError):
        attempts.enter_credential()


def test_failures_in_the_window_pause_face_and_the_pause_runs_out(tmp_path: Path) -> None:
    clock = FixedClock()
    limits = _limits(tmp_path, clock)
    for session in ("A", "B"):
        limits.end_face(limits.begin_face(session), False, "liveness")
    limits.begin_face("C")  # abandoned, never ended: counts like a failure
    assert limits.paused_until() is not None, "the screen shows the pause as soon as the window is full"
    with pytest.raises(FacePausedError, match="paused on this terminal until"):
        limits.begin_face("D")
    assert limits.paused_until() == clock.at + RULE.pause
    clock.at += RULE.pause
    assert limits.paused_until() is None
    assert limits.state()["failures_in_window"] == 0, "the pause spent the failures that caused it"
    limits.end_face(limits.begin_face("E"), False, "liveness")
    assert limits.paused_until() is None


def test_a_pass_does_not_count_and_credentials_share_the_window(tmp_path: Path) -> None:
    clock = FixedClock()
    limits = _limits(tmp_path, clock)
    for _ in range(5):
        limits.end_face(limits.begin_face("A"), True, "match")
    limits.credential_failed("A", "qr: used token")
    limits.credential_failed("B", "card: forged certificate")
    assert limits.paused_until() is None
    limits.credential_failed("C", "id: not enrolled")
    assert limits.paused_until() is not None, "three failures of any kind pause face"


def test_failures_older_than_the_window_are_forgotten(tmp_path: Path) -> None:
    clock = FixedClock()
    limits = _limits(tmp_path, clock)
    limits.credential_failed("A", "x")
    limits.credential_failed("B", "x")
    clock.at += RULE.window + timedelta(seconds=1)
    limits.credential_failed("C", "x")
    assert limits.paused_until() is None and limits.state()["failures_in_window"] == 1


def test_a_technician_reset_lifts_the_pause_and_forgets_the_window(tmp_path: Path) -> None:
    clock = FixedClock()
    limits = _limits(tmp_path, clock)
    for name in "ABC":
        limits.credential_failed(name, "x")
    assert limits.paused_until() is not None
    clock.at += timedelta(seconds=1)
    limits.reset()
    assert limits.paused_until() is None
    clock.at += timedelta(seconds=1)
    limits.end_face(limits.begin_face("D"), False, "liveness")
    assert limits.paused_until() is None and limits.state()["failures_in_window"] == 1


def test_typed_ids_count_until_their_face_check_passes(tmp_path: Path) -> None:
    clock = FixedClock()
    limits = _limits(tmp_path, clock)
    verified = limits.begin_credential("A")
    limits.end_credential(verified, True, "face 1:1 passed")
    limits.begin_credential("B")  # never verified
    assert limits.state()["failures_in_window"] == 1
    failed = limits.begin_credential("C")
    limits.end_credential(failed, False, "cancelled")
    assert limits.paused_until() is None
    limits.begin_credential("D")  # the third one counting
    with pytest.raises(FacePausedError):
        limits.begin_credential("E")  # typed IDs need face, which is paused now


def test_failures_made_during_a_pause_pause_again_when_it_ends(tmp_path: Path) -> None:
    clock = FixedClock()
    limits = _limits(tmp_path, clock)
    for name in "ABC":
        limits.credential_failed(name, "x")
    assert limits.paused_until() is not None
    clock.at += timedelta(seconds=1)
    for name in "DEF":
        limits.credential_failed(name, "forged card during the pause")
    clock.at += RULE.pause
    assert limits.paused_until() is not None, "the screen does not offer face the next frame refuses"
