"""The CentreLink over the uplink: a settlement's 2207 delivered now, so its binding result is charged.

Before the kiosk charges the patient's cash share, the saga (pipeline/payment.py) asks for the centre's
binding psn_cash_pay. This delivers the outbox in order up to that settlement's entry through the same
sync worker the background sync runs (pipeline/sync.py: query-before-resend, refusal, parking), but
bounded: one attempt per entry, a short HTTP timeout (`[payment] binding_wait_s`), at most a handful
of earlier entries, and never while the background sync is draining (they share one drain lock, taken
without waiting). Whatever fails only leaves the entry pending: the saga then charges the estimate,
marked as such, and the daily report says what to collect or refund.

The caller holds the terminal lock (the confirm route); the database steps run under it, and so do
the bounded HTTP calls: the patient's own checkout is what waits for them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from terminal.domain import OutboxEntry
from terminal.errors import TerminalError
from terminal.pipeline.sync import Backoff, SyncWorker
from terminal.ports import Clock, Outbox, Revert
from terminal.store.outbox import OutboxStore
from terminal.uplink.client import HttpUplink

log = logging.getLogger(__name__)

# Earlier entries (other settlements still queued) delivered on the way to this one, at most.
MAX_AHEAD = 5


class _UpTo:
    """The Outbox port seen only up to one msgid: the drain stops once that entry has been decided."""

    def __init__(self, outbox: OutboxStore, msgid: str) -> None:
        self._outbox = outbox
        self._msgid = msgid
        self.reached = False

    def pending(self, limit: int) -> list[OutboxEntry]:
        """Pending entries, oldest first, cut after the target; none once the target was decided."""
        if self.reached:
            return []
        entries = self._outbox.pending(limit)
        for index, entry in enumerate(entries):
            if entry.msgid == self._msgid:
                return entries[: index + 1]
        return entries

    def note_attempt(self, seq: int, error: str, outcome_unknown: bool) -> None:
        """Count a failed attempt."""
        self._outbox.note_attempt(seq, error, outcome_unknown)

    def local_setlinfo(self, msgid: str) -> Mapping[str, Any] | None:
        """The terminal's own estimate."""
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
        self._mark(entry)
        return self._outbox.deliver(entry, inf_refmsgid, output, local, at)

    def refuse(self, entry: OutboxEntry, reason: str, at: datetime, revert: Revert) -> bool:
        """Set a refused entry aside."""
        self._mark(entry)
        return self._outbox.refuse(entry, reason, at, revert)

    def park(self, entry: OutboxEntry, reason: str, at: datetime) -> None:
        """Park an entry for a technician."""
        self._mark(entry)
        self._outbox.park(entry, reason, at)

    def note_failure(self, at: datetime, error: str) -> int:
        """Offline from now."""
        return self._outbox.note_failure(at, error)

    def note_contact(self, at: datetime, synced: bool) -> None:
        """The upstream answered; never a complete sync (only part of the queue was asked for)."""
        self._outbox.note_contact(at, synced=False)

    def local_totals(self, day: str) -> dict[str, str]:
        """3201 input totals (not used here)."""
        return self._outbox.local_totals(day)

    def keep_totals(
        self, day: str, stmt_rslt: str, local: Mapping[str, Any], upstream: Mapping[str, Any], at: datetime
    ) -> None:
        """Store one day's 3201 verdict (not used here)."""
        self._outbox.keep_totals(day, stmt_rslt, local, upstream, at)

    def _mark(self, entry: OutboxEntry) -> None:
        if entry.msgid == self._msgid:
            self.reached = True


@dataclass
class UplinkCentreLink:
    """Delivers the outbox up to one settlement now (bounded), through a fresh signed-in link."""

    outbox: OutboxStore
    link: Callable[[], HttpUplink]
    clock: Clock
    new_msgid: Callable[[datetime], str]
    drain_lock: threading.Lock
    # Whether to skip asking: the background sync is running and the upstream is known to be down.
    known_down: Callable[[], bool] = lambda: False

    def deliver_through(self, msgid: str) -> None:
        """Try once to deliver the queue up to `msgid`; failures only leave it pending (logged)."""
        if self.known_down():
            log.info("binding result of %s not asked for: the upstream is down (the sync probes it)", msgid)
            return
        if not self.drain_lock.acquire(blocking=False):
            log.info("binding result of %s not asked for: the background sync is draining", msgid)
            return
        try:
            self._drain(msgid)
        finally:
            self.drain_lock.release()

    def _drain(self, msgid: str) -> None:
        outbox = _UpTo(self.outbox, msgid)
        link = self.link()
        try:
            worker = SyncWorker(
                _as_outbox(outbox), link, self.clock, self.new_msgid,
                batch=MAX_AHEAD + 1, backoff=Backoff(0.0, 0.0, 1), sleep=lambda _s: None,
            )  # fmt: skip
            report = worker.drain(max_entries=MAX_AHEAD + 1)
        except TerminalError as exc:
            log.warning("binding result of %s not fetched: %s", msgid, exc)
            return
        finally:
            link.close()
        if not outbox.reached:
            log.warning("binding result of %s not fetched: %s", msgid, report.stopped_on or "not reached")


def _as_outbox(outbox: _UpTo) -> Outbox:
    return outbox
