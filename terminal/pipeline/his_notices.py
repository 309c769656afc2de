"""Settled-bill notices sent back to the bill source, from a worker that retries until it hears back.

The ledger is the source of truth for what was settled. The HIS only hears about it, from a worker
thread that retries until it does; a settlement never waits for, or depends on, the HIS.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from terminal.domain import SettledNotice
from terminal.errors import HisError, HisRefused
from terminal.ports import BillSource, Clock

log = logging.getLogger(__name__)


class NoticeLog(Protocol):
    """Which settled bills the source still has to hear about (terminal/store/notices.py), durably."""

    def loaded(self, chrg_bchno: str, at: str) -> None:
        """The patient chose this bill from the source."""
        ...

    def settled(
        self, chrg_bchno: str, msgid: str, body: Mapping[str, str], at: str, *, listed: bool = False
    ) -> bool:
        """Queue the notice of a settled bill; True when one now waits to be sent."""
        ...

    def waiting(self, state: str) -> list[str]:
        """Bill numbers in this state."""
        ...

    def pending(self) -> list[tuple[str, dict[str, str]]]:
        """Notices still to send: bill number and body."""
        ...

    def finish(self, chrg_bchno: str, state: str, at: str, detail: str = "") -> None:
        """Record how a send ended: sent, pending (retry) or refused (final)."""
        ...

    def summary(self) -> dict[str, int]:
        """Counts per state, for the technician page."""
        ...


class HisNotifier:
    """Tells the bill source about settled bills from a worker thread, retrying with backoff until it hears.

    Nothing here touches money: the settlement is in the ledger before a notice is queued, and a
    notice that never arrives leaves the bill listed at the HIS, where the kiosk's listing filters it
    out (the ledger says settled) and queues the notice again.
    """

    def __init__(
        self,
        source: BillSource,
        journal: NoticeLog,
        clock: Clock,
        retry_s: float = 5.0,
        retry_cap_s: float = 300.0,
    ) -> None:
        self.journal = journal
        self._source = source
        self._clock = clock
        self._retry_s = retry_s
        self._retry_cap_s = max(retry_cap_s, retry_s)
        self._wake = threading.Event()
        self._flush_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def loaded(self, chrg_bchno: str) -> None:
        """The patient chose this bill from the source."""
        self.journal.loaded(chrg_bchno, self._now())

    def settled(self, notice: SettledNotice, *, listed: bool = False) -> None:
        """Queue a settled bill's notice (if it came from the source) and wake the worker; returns at once."""
        # A notice already waiting is sent now too: the patient is back, so the HIS may well be.
        if self.journal.settled(notice.chrg_bchno, notice.msgid, notice.body(), self._now(), listed=listed):
            self._kick()

    def reconcile(self, settlement_of: Callable[[str], Mapping[str, Any] | None]) -> None:
        """Queue notices for loaded bills the ledger settled (a restart right after settling); at start."""
        for chrg_bchno in self.journal.waiting("loaded"):
            row = settlement_of(chrg_bchno)
            if row is not None:
                notice = SettledNotice.from_ledger(chrg_bchno, row)
                self.journal.settled(chrg_bchno, notice.msgid, notice.body(), self._now())
        if self.journal.pending():
            self._kick()

    def flush(self) -> int:
        """Send every pending notice now, stopping at the first failure the source may recover from."""
        sent = 0
        with self._flush_lock:
            for notice in self._pending():
                try:
                    self._source.notify_settled(notice.chrg_bchno, notice)
                except HisRefused as exc:
                    # Final: e.g. the HIS says another msgid paid it. The ledger stands; a person must look.
                    log.error("HIS will not take the settlement of %s: %s", notice.chrg_bchno, exc)
                    self.journal.finish(notice.chrg_bchno, "refused", self._now(), str(exc))
                    continue
                except HisError as exc:
                    log.warning("HIS not told of %s yet (will retry): %s", notice.chrg_bchno, exc)
                    self.journal.finish(notice.chrg_bchno, "pending", self._now(), str(exc))
                    break
                self.journal.finish(notice.chrg_bchno, "sent", self._now())
                log.info("HIS told: %s settled as %s", notice.chrg_bchno, notice.msgid)
                sent += 1
        return sent

    def _kick(self) -> None:
        # Set before a first start: the new thread's first flush then answers this kick.
        self._wake.set()
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="his-notices", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        delay = self._retry_s
        while True:
            self._wake.clear()
            try:
                self.flush()
                waiting = bool(self.journal.pending())
            except Exception:
                # The thread boundary: an unexpected failure must not end all later notices.
                log.exception("HIS notices: flush failed unexpectedly")
                waiting = True
            if waiting:
                # Why real time, not the injected clock: this paces network retries, it decides nothing.
                self._wake.wait(delay)
                delay = min(delay * 2, self._retry_cap_s)
            else:
                delay = self._retry_s
                self._wake.wait()

    def _pending(self) -> list[SettledNotice]:
        return [SettledNotice(chrg_bchno=no, **body) for no, body in self.journal.pending()]

    def _now(self) -> str:
        return self._clock.now().isoformat()
