"""The served terminal's payment worker: unfinished payment sagas resumed at start and on an interval.

A payment the terminal stopped following (a crash, a lost answer, a gateway that did not answer a
close or a refund) is driven to one of its two ends here (pipeline/payment.py `recover`), and the
live session's timeouts fire even when no page asks (walking away from a QR reverses it). One thread;
it takes the terminal lock with the background bound (`[service] background_wait_s`) and skips the
run when the terminal stays busy, so a request never waits behind it beyond its own bounded wait.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from terminal.app.locking import hold
from terminal.errors import TerminalError

log = logging.getLogger(__name__)


class RecoveringSession(Protocol):
    """What the worker uses of the session (pipeline/session_paying.py)."""

    def tick(self) -> bool:
        """Apply a due timeout."""
        ...

    def recover_payments(self) -> int:
        """Resume every unfinished saga but the live one; how many ended."""
        ...


class PaymentWorker:
    """Resumes unfinished payments at once, then every `interval_s`; stops within one gateway call."""

    def __init__(
        self,
        session: RecoveringSession,
        lock: threading.RLock,
        interval_s: float,
        wait_s: float,
        after_pass: Callable[[], None] | None = None,
    ) -> None:
        self._session = session
        self._after_pass = after_pass
        self._lock = lock
        self._interval_s = interval_s
        self._wait_s = wait_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0

    def run_once(self) -> int:
        """One pass: the session's timeout, then every unfinished saga; how many ended (0 when busy)."""
        try:
            with hold(self._lock, self._wait_s, "payment recovery"):
                self._session.tick()
                ended = self._session.recover_payments()
                if self._after_pass is not None:
                    self._after_pass()
        except TerminalError as exc:
            # Busy, or the store failed: nothing changed; the next pass tries again.
            log.warning("payment recovery pass skipped: %s", exc)
            return 0
        finally:
            self.runs += 1
        if ended:
            log.info("payment recovery: %d payment(s) brought to an end", ended)
        return ended

    def start(self) -> None:
        """Start the thread (first pass at once)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="medpay-payment-recovery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop and wait for it (bounded)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(self._wait_s + 30.0)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the thread must outlive any one pass; the detail goes to the log
                log.exception("payment recovery pass failed")
            if self._stop.wait(self._interval_s):
                return
