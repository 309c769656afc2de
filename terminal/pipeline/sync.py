"""The sync worker: drains the outbox in order to the upstream, exactly once in effect.

Order matters because a person's year-to-date accumulators upstream depend on their earlier
settlements, so an entry that cannot be delivered yet (unreachable, unknown outcome) stops the drain
rather than being skipped. An entry no retry can deliver (an envelope the wire contract refuses, a
refusal that cannot be taken back out of the accumulators) is parked for a technician instead: the drain
goes on, and the store holds back that person's later entries until the parked one is re-queued or
voided (docs/uplink.md, "Parked entries"). Every failed delivery or sign-in is noted at once: from the
first one the terminal settles under the offline limits. A request whose outcome is
unknown (timeout, 5xx, lost reply) is never blindly resent: the next attempt first asks the upstream
by msgid (5203) and takes the committed result if there is one; only "not found" leads to a resend,
which the upstream's idempotency on msgid makes harmless even if the query itself raced a commit.
A refused settlement is set aside and taken back out of the patient's year-to-date accumulators in
the same transaction, exactly as a reversal would.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from terminal.domain import INFNO_SETTLE, OutboxEntry
from terminal.errors import (
    SettlementError,
    TerminalError,
    UplinkAuthRequired,
    UplinkEnvelopeInvalid,
    UplinkError,
    UplinkRefused,
    UplinkUnknownOutcome,
    UplinkUnreachable,
)
from terminal.ports import Clock, Outbox, Uplink
from terminal.settlement import AccumulatorDelta, Accumulators

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: delay n is uniform in [0, min(cap, base * 2**n)]."""

    base: float = 0.5
    cap: float = 60.0
    max_attempts: int = 8  # per drain() call; the entry stays pending for the next call

    def delay(self, attempt: int, rnd: Callable[[], float]) -> float:
        """Seconds to wait before retry number `attempt` (0-based)."""
        # Full jitter spreads a fleet of kiosks coming back after a city-wide outage.
        return rnd() * min(self.cap, self.base * float(2 ** min(attempt, 30)))


@dataclass
class SyncReport:
    """What one drain did."""

    delivered: int = 0
    recovered_by_query: int = 0
    differences: int = 0
    retries: int = 0
    refused: list[str] = field(default_factory=list)
    parked: list[str] = field(default_factory=list)
    stopped_on: str = ""  # why the drain ended early ("" when the outbox was emptied)
    head_refused: str = ""  # why the upstream refused the audit chain head sent after the drain ("" if not)


class SyncWorker:
    """Delivers outbox entries in order, in batches, with backoff; stores results and differences."""

    def __init__(
        self,
        outbox: Outbox,
        uplink: Uplink,
        clock: Clock,
        new_msgid: Callable[[datetime], str],
        *,
        batch: int = 50,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] | None = None,
        rnd: Callable[[], float] | None = None,
        report_head: Callable[[], str] | None = None,
    ) -> None:
        self._outbox = outbox
        # Sends the signed audit chain head after every drain that reached the upstream; returns the
        # upstream's refusal ("" when accepted). Composed in terminal/app/audit_heads.py.
        self._report_head = report_head
        self._uplink = uplink
        self._clock = clock
        self._new_msgid = new_msgid
        self._batch = batch
        self._backoff = backoff or Backoff()
        self._sleep = sleep or time.sleep
        self._rnd = rnd or random.random

    def drain(self, max_entries: int = 100_000) -> SyncReport:
        """Deliver pending entries oldest first until empty, refused, out of retries or max_entries.

        Then, when the upstream was reached, the audit chain head goes with it (its refusal in the report).
        """
        report = SyncReport()
        if not self._ensure_signed_in(report):
            return report
        self._drain(report, max_entries)
        if self._report_head is not None and self._uplink.sign_no:
            try:
                report.head_refused = self._report_head()
            except UplinkError as exc:
                # Not reached, or the outcome unknown: the next sync sends the head again.
                log.warning("audit chain head not reported: %s", exc)
        return report

    def _drain(self, report: SyncReport, max_entries: int) -> SyncReport:
        while report.delivered + len(report.refused) + len(report.parked) < max_entries:
            entries = self._outbox.pending(self._batch)
            if not entries:
                # The offline policy measures staleness from the last full drain.
                self._outbox.note_contact(self._clock.now(), synced=True)
                return report
            for entry in entries:
                if not self._deliver_with_retries(entry, report):
                    return report
        report.stopped_on = "max_entries"
        return report

    def compare_totals(self, day: str) -> dict[str, Any]:
        """3201 for one day: local totals vs the upstream's; stored in upstream_totals and returned."""
        mine = self._outbox.local_totals(day)
        now = self._clock.now()
        output = self._uplink.daily_totals(self._new_msgid(now), mine, now)
        self._outbox.keep_totals(day, str(output.get("stmt_rslt", "")), mine, output, now)
        return output

    def _ensure_signed_in(self, report: SyncReport) -> bool:
        for attempt in range(self._backoff.max_attempts):
            if self._uplink.sign_no:
                return True
            now = self._clock.now()
            try:
                self._uplink.sign_in(self._new_msgid(now), now)
                self._outbox.note_contact(self._clock.now(), synced=False)
                return True
            except (UplinkRefused, UplinkEnvelopeInvalid) as exc:
                report.stopped_on = f"sign-in refused: {exc}"
                return False
            except UplinkError as exc:
                log.warning("sign-in failed (%s); retrying", exc)
                self._failed(exc)
                report.retries += 1
                self._sleep(self._backoff.delay(attempt, self._rnd))
        report.stopped_on = "upstream unreachable (sign-in)"
        return False

    def _deliver_with_retries(self, entry: OutboxEntry, report: SyncReport) -> bool:
        unknown = entry.outcome_unknown
        for attempt in range(self._backoff.max_attempts):
            try:
                committed = self._ask(entry) if unknown else None
                if committed is not None:
                    report.recovered_by_query += 1
                    refmsgid = str(committed.pop("inf_refmsgid", ""))
                    response_output = committed
                else:
                    response = self._uplink.call(entry.envelope)
                    response_output, refmsgid = dict(response.output), response.inf_refmsgid
            except UplinkRefused as exc:
                # A business refusal is final for this message; it is kept for a technician, not retried.
                return self._set_aside(entry, str(exc), report)
            except UplinkEnvelopeInvalid as exc:
                # Nothing was sent; no resend can make this envelope valid.
                return self._park(entry, str(exc), report)
            except UplinkAuthRequired as exc:
                # A restarted upstream or a new day's sign_no: sign in again, then retry this entry.
                self._outbox.note_attempt(entry.seq, str(exc), outcome_unknown=unknown)
                report.retries += 1
                self._uplink.sign_no = ""
                if not self._ensure_signed_in(report):
                    return False
                continue
            except (UplinkUnknownOutcome, UplinkUnreachable) as exc:
                unknown = unknown or isinstance(exc, UplinkUnknownOutcome)
                self._outbox.note_attempt(entry.seq, str(exc), outcome_unknown=unknown)
                self._failed(exc)
                report.retries += 1
                log.warning("outbox #%d %s: %s (attempt %d)", entry.seq, entry.msgid, exc, attempt + 1)
                self._sleep(self._backoff.delay(attempt, self._rnd))
                continue
            local = self._outbox.local_setlinfo(entry.msgid) if entry.infno == INFNO_SETTLE else None
            diffs = self._outbox.deliver(entry, refmsgid, response_output, local, self._clock.now())
            report.delivered += 1
            report.differences += len(diffs)
            for name, mine, theirs in diffs:
                log.warning("msgid %s: %s local %s, upstream %s (binding)", entry.msgid, name, mine, theirs)
            return True
        report.stopped_on = f"outbox #{entry.seq} not delivered after {self._backoff.max_attempts} attempts"
        return False

    def _ask(self, entry: OutboxEntry) -> dict[str, Any] | None:
        now = self._clock.now()
        found = self._uplink.query(self._new_msgid(now), entry.msgid, now)
        if found is None:
            return None
        if found.get("infcode") != 0:
            err_msg = str(found.get("err_msg", ""))
            raise UplinkRefused(
                f"{entry.msgid} was refused upstream: {err_msg}", err_msg, dict(found.get("output") or {})
            )
        output = dict(found.get("output", {}))
        output["inf_refmsgid"] = found.get("inf_refmsgid", "")
        return output

    def _set_aside(self, entry: OutboxEntry, reason: str, report: SyncReport) -> bool:
        try:
            restored = self._outbox.refuse(entry, reason, self._clock.now(), reverted_accumulators)
        except TerminalError as exc:
            # Nothing was written. Parked, not set aside: the refused settlement stays counted in the
            # patient's year-to-date totals until a technician voids it, and the store holds back that
            # patient's later entries meanwhile; everyone else's go on.
            return self._park(entry, f"refused upstream ({reason}) but could not be set aside: {exc}", report)
        report.refused.append(entry.msgid)
        log.warning(
            "outbox #%d %s refused upstream (%s)%s",
            entry.seq,
            entry.msgid,
            reason,
            "; its accumulators were taken back out" if restored else "",
        )
        return True

    def _park(self, entry: OutboxEntry, reason: str, report: SyncReport) -> bool:
        try:
            self._outbox.park(entry, reason, self._clock.now())
        except TerminalError as exc:
            report.stopped_on = f"outbox #{entry.seq} could not be parked ({reason}): {exc}"
            log.error("%s", report.stopped_on)
            return False
        report.parked.append(entry.msgid)
        log.error("outbox #%d %s parked for a technician: %s", entry.seq, entry.msgid, reason)
        return True

    def _failed(self, exc: UplinkError) -> None:
        # From the first failure the terminal settles under the offline limits (pipeline/offline.py).
        try:
            marked = self._outbox.note_failure(self._clock.now(), str(exc))
        except TerminalError as error:
            log.error("could not note the upstream failure (%s): %s", exc, error)
            return
        if marked:
            log.warning("upstream failed (%s): %d unconfirmed settlement(s) now marked offline", exc, marked)


def reverted_accumulators(current: Mapping[str, Any], result: Mapping[str, Any]) -> Mapping[str, Any]:
    """Stored accumulators with one stored settlement result taken back out, as settlement.reverse() does."""
    # reverse(current, result) subtracts result.delta; the ledger keeps the result as JSON, so the
    # delta is read back from it and subtracted by the same Accumulators.revert.
    try:
        raw = result["accumulator_delta"]
        year = int(raw["year"])
        changes = {str(k): Decimal(str(v)) for k, v in dict(raw["changes"]).items()}
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise SettlementError(f"stored settlement has no readable accumulator delta: {exc!r}") from exc
    delta = AccumulatorDelta(year, changes)
    return Accumulators.from_json(current, year).revert(delta).to_json()
