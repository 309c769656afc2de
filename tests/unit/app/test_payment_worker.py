"""The payment worker: a pass ticks the session and resumes sagas; a busy terminal skips it, never waits."""

from __future__ import annotations

import threading

from terminal.app.payment_worker import PaymentWorker
from terminal.errors import StoreBusyError


class Session:
    def __init__(self, ended: int = 0, fail: Exception | None = None) -> None:
        self.calls: list[str] = []
        self.ended = ended
        self.fail = fail

    def tick(self) -> bool:
        self.calls.append("tick")
        return False

    def recover_payments(self) -> int:
        self.calls.append("recover")
        if self.fail is not None:
            raise self.fail
        return self.ended


def test_a_pass_ticks_then_recovers() -> None:
    session = Session(ended=2)
    worker = PaymentWorker(session, threading.RLock(), interval_s=60, wait_s=0.01)
    assert worker.run_once() == 2
    assert session.calls == ["tick", "recover"]


def test_a_pass_ends_by_telling_the_his_what_completed() -> None:
    session, told = Session(ended=1), []
    worker = PaymentWorker(
        session, threading.RLock(), interval_s=60, wait_s=0.01, after_pass=lambda: told.append("his")
    )
    worker.run_once()
    assert session.calls == ["tick", "recover"] and told == ["his"]


def test_a_busy_terminal_skips_the_pass() -> None:
    session, lock = Session(ended=1), threading.RLock()
    worker = PaymentWorker(session, lock, interval_s=60, wait_s=0.0)
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    try:
        assert worker.run_once() == 0
    finally:
        release.set()
        holder.join()
    assert session.calls == []


def test_a_store_failure_is_noted_and_the_next_pass_tries_again() -> None:
    session = Session(fail=StoreBusyError("database is locked"))
    worker = PaymentWorker(session, threading.RLock(), interval_s=60, wait_s=0.01)
    assert worker.run_once() == 0
    session.fail = None
    session.ended = 1
    assert worker.run_once() == 1
    assert worker.runs == 2
