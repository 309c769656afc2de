"""Background sync inside `medpay serve`: the outbox (then the gallery) delivered on an interval.

One worker thread. It uses the database only under the terminal's lock (the RLock the service's
requests, the capture loop and the reader threads share) and only around database steps: the HTTP
calls run without it, so a slow or silent upstream never holds up a patient's checkout. Each run signs
in afresh, which is also the probe: a run that cannot reach the upstream marks the terminal offline
at once (pipeline/sync.py). Between runs it waits `[uplink] sync_interval_s`, longer after failures
(the sync's full-jitter backoff on top), and it stops within one HTTP timeout when asked.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import sqlite_utils

from terminal.app.audit_heads import HeadReporter
from terminal.app.clock_guard import time_recorder
from terminal.config import TerminalConfig
from terminal.domain import OutboxEntry
from terminal.errors import TerminalError
from terminal.pipeline.sync import Backoff, SyncReport, SyncWorker
from terminal.ports import Clock, Revert
from terminal.store.audit_heads import AuditHeadStore
from terminal.store.gallery import SqliteGallery, gallery_version
from terminal.store.ledger import SqliteLedger
from terminal.store.outbox import OutboxStore
from terminal.uplink.client import HttpUplink
from terminal.uplink.gallery import apply_gallery_delta, fetch_gallery_delta
from terminal.uplink.registration import identity
from terminal.uplink.signing import uplink_keys

log = logging.getLogger(__name__)


class SyncedTerminal(Protocol):
    """What the worker uses of a Terminal (app/terminal.py), which builds it: no import back to it."""

    config: TerminalConfig
    data_dir: Path
    clock: Clock
    lock: threading.RLock

    @property
    def db(self) -> sqlite_utils.Database:
        """The terminal database."""
        ...

    @property
    def outbox(self) -> OutboxStore:
        """The outbox store."""
        ...

    @property
    def ledger(self) -> SqliteLedger:
        """The ledger (msgid allocation)."""
        ...

    @property
    def gallery(self) -> SqliteGallery:
        """The gallery a delta is applied to."""
        ...


class _Stopping(Exception):
    """Raised from the backoff pause when the worker is asked to stop; ends the drain between steps."""


class LockedOutbox:
    """The Outbox port with every database step under the terminal's lock (and nothing else)."""

    def __init__(self, outbox: OutboxStore, lock: threading.RLock) -> None:
        self._outbox = outbox
        self._lock = lock

    def pending(self, limit: int) -> list[OutboxEntry]:
        """Entries to deliver now, oldest first."""
        with self._lock:
            return self._outbox.pending(limit)

    def note_attempt(self, seq: int, error: str, outcome_unknown: bool) -> None:
        """Count a failed attempt."""
        with self._lock:
            self._outbox.note_attempt(seq, error, outcome_unknown)

    def local_setlinfo(self, msgid: str) -> Mapping[str, Any] | None:
        """The terminal's own estimate for a settlement."""
        with self._lock:
            return self._outbox.local_setlinfo(msgid)

    def deliver(
        self,
        entry: OutboxEntry,
        inf_refmsgid: str,
        output: Mapping[str, Any],
        local: Mapping[str, Any] | None,
        at: datetime,
    ) -> list[tuple[str, str, str]]:
        """Mark delivered with the binding output."""
        with self._lock:
            return self._outbox.deliver(entry, inf_refmsgid, output, local, at)

    def refuse(self, entry: OutboxEntry, reason: str, at: datetime, revert: Revert) -> bool:
        """Set a refused entry aside, its settlement out of the accumulators."""
        with self._lock:
            return self._outbox.refuse(entry, reason, at, revert)

    def park(self, entry: OutboxEntry, reason: str, at: datetime) -> None:
        """Park an entry for a technician."""
        with self._lock:
            self._outbox.park(entry, reason, at)

    def note_failure(self, at: datetime, error: str) -> int:
        """Offline from now; unconfirmed settlements marked offline."""
        with self._lock:
            return self._outbox.note_failure(at, error)

    def note_contact(self, at: datetime, synced: bool) -> None:
        """The upstream answered."""
        with self._lock:
            self._outbox.note_contact(at, synced)

    def local_totals(self, day: str) -> dict[str, str]:
        """3201 input totals for one day."""
        with self._lock:
            return self._outbox.local_totals(day)

    def keep_totals(
        self, day: str, stmt_rslt: str, local: Mapping[str, Any], upstream: Mapping[str, Any], at: datetime
    ) -> None:
        """Store one day's 3201 verdict."""
        with self._lock:
            self._outbox.keep_totals(day, stmt_rslt, local, upstream, at)


class BackgroundSync:
    """The sync worker thread of a served terminal; `run_once()` is one run (tests call it directly)."""

    def __init__(
        self,
        terminal: SyncedTerminal,
        *,
        gallery_keys: Callable[[], Mapping[str, bytes]] | None = None,
        link: Callable[[], HttpUplink] | None = None,
        backoff: Backoff | None = None,
        rnd: Callable[[], float] = random.random,
        drain_lock: threading.Lock | None = None,
    ) -> None:
        section = terminal.config.uplink
        if not section.url:
            raise ValueError("background sync needs [uplink] url")
        url = section.url
        self._terminal = terminal
        self._interval = section.sync_interval_s
        self._link = link or (
            lambda: HttpUplink(
                url,
                uplink_keys(terminal.data_dir),
                identity(terminal.config.terminal),
                section.timeout_s,
                on_time=time_recorder(terminal.db, terminal.clock, terminal.lock),
            )
        )
        # Trusted gallery keys (development key refused in production), or None: no gallery pulled.
        self._gallery_keys = gallery_keys
        self._backoff = backoff or Backoff(
            section.backoff_base_s, section.backoff_cap_s, section.max_attempts
        )
        self._rnd = rnd
        self._join_s = section.timeout_s + 5.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()  # the state dict only; never held around I/O
        # One drain at a time: the checkout's own bounded delivery (app/centre_link.py) shares it.
        self.drain_lock = drain_lock or threading.Lock()
        self._failures = 0
        self._state: dict[str, Any] = {
            "interval_s": self._interval, "runs": 0, "last_run_at": None, "last_success_at": None,
            "last_error": "", "last_error_at": None, "last_report": None,
            "pending": None, "parked": None, "down_since": None,
        }  # fmt: skip

    def start(self) -> None:
        """Start the thread (first run at once); a no-op when it already runs."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="medpay-uplink-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop and wait for it (at most one HTTP timeout, then it is left as a daemon)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(self._join_s)
            if thread.is_alive():
                log.error("uplink sync did not stop within %.0f s; left to end on its own", self._join_s)

    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def state(self) -> dict[str, Any]:
        """Last run, success and error; pending and parked counts; down since (no I/O, no terminal lock)."""
        with self._guard:
            return {**self._state, "running": self.running(), "consecutive_failures": self._failures}

    def next_wait(self) -> float:
        """Seconds until the next run: the interval, plus the backoff's jittered delay after failures."""
        if self._failures == 0:
            return self._interval
        return self._interval + self._backoff.delay(self._failures - 1, self._rnd)

    def run_once(self) -> SyncReport | None:
        """One run: drain the outbox, then (when configured and the drain got through) pull the gallery."""
        term = self._terminal
        started = term.clock.now()
        error = ""
        report: SyncReport | None = None
        link = self._link()
        try:
            worker = SyncWorker(
                LockedOutbox(term.outbox, term.lock), link, term.clock, self._msgid,
                batch=term.config.uplink.batch, backoff=self._backoff, sleep=self._pause, rnd=self._rnd,
                report_head=HeadReporter(
                    AuditHeadStore(term.db), link, term.clock, self._msgid, lambda: term.lock
                ),
            )  # fmt: skip
            with self.drain_lock:
                report = worker.drain()
            error = report.stopped_on
            if not error and self._gallery_keys is not None:
                self._gallery(link, self._gallery_keys())
        except _Stopping:
            error = "stopped while retrying"
        except TerminalError as exc:
            error = f"{exc} [{exc.code}]"
        except Exception as exc:  # the thread must outlive any one run; the detail goes to the log
            log.exception("uplink sync run failed")
            error = f"{type(exc).__name__}: {exc}"
        finally:
            link.close()
        self._finish(started, error, report)
        return report

    def _gallery(self, link: HttpUplink, trusted: Mapping[str, bytes]) -> None:
        term = self._terminal
        with term.lock:
            since = gallery_version(term.db)
        delta = fetch_gallery_delta(
            link, self._msgid, term.clock.now(), since, trusted, term.config.uplink.gallery_delta_max_age_s
        )
        with term.lock:
            apply_gallery_delta(term.gallery, delta, term.clock.now())

    def _finish(self, started: datetime, error: str, report: SyncReport | None) -> None:
        term = self._terminal
        try:
            with term.lock:
                facts = term.outbox.uplink_facts()
        except TerminalError as exc:
            facts = None
            error = error or f"{exc} [{exc.code}]"
        with self._guard:
            self._failures = self._failures + 1 if error else 0
            self._state.update(runs=self._state["runs"] + 1, last_run_at=started.isoformat())
            if error:
                self._state.update(last_error=error, last_error_at=started.isoformat())
            else:
                self._state["last_success_at"] = started.isoformat()
            if report is not None:
                self._state["last_report"] = {
                    "delivered": report.delivered, "recovered_by_query": report.recovered_by_query,
                    "refused": len(report.refused), "parked": len(report.parked), "retries": report.retries,
                    "stopped_on": report.stopped_on,
                }  # fmt: skip
            if facts is not None:
                self._state.update(
                    pending=facts.queued, parked=facts.parked,
                    down_since=facts.down_since.isoformat() if facts.down_since else None,
                )  # fmt: skip
        if error:
            log.warning("uplink sync: %s", error)

    def _msgid(self, at: datetime) -> str:
        with self._terminal.lock:
            return self._terminal.ledger.allocate_msgid(at)

    def _pause(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Stopping()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            if self._stop.wait(self.next_wait()):
                return


def with_uplink_sync(
    sync: BackgroundSync | None, lifespan: Callable[[Any], AbstractAsyncContextManager[None]]
) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """The service's lifespan with the terminal's background sync running around it (when configured)."""

    @contextlib.asynccontextmanager
    async def served(app: Any) -> AsyncIterator[None]:
        if sync is not None:
            sync.start()
        try:
            async with lifespan(app):
                yield
        finally:
            if sync is not None:
                sync.stop()

    return served


__all__ = ["BackgroundSync", "LockedOutbox", "SyncedTerminal", "with_uplink_sync"]
