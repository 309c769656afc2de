"""Settlements, year-to-date accumulators and the outbox, written together or not at all."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import sqlite_utils

from terminal.domain import SettlementRecord
from terminal.errors import DuplicateSettlementError, StoreError
from terminal.ports import Clock
from terminal.store import audit
from terminal.store.db import immediate
from terminal.store.guard import STORAGE_FAILURES
from terminal.store.ledger_digest import amounts_digest, envelope_digest
from terminal.store.payments import open_payment
from terminal.store.reversals import next_msgid, set_msgid_slot

# A settlement that still stands: not reversed by a failed payment or a refund (it holds its bill).
LIVE = "reversed_at IS NULL"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


class SqliteLedger:
    """The Ledger port over SQLite."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        fixmedins_code: str,
        clock: Clock,
        envelope_problem: Callable[[Mapping[str, Any]], str] | None = None,
        collects: bool = True,
        msgid_slot: int = 0,
    ) -> None:
        self._db = db
        self._msgid_slot = msgid_slot
        # False: no payment gateway takes the cash share here, so a settlement's payment opens as
        # "external" (collected outside), never as a saga that recovery would reverse as interrupted.
        self._collects = collects
        self._fixmedins_code = fixmedins_code
        self._clock = clock
        # The wire contract's check (terminal/uplink/wire.py), injected by the composition root: an
        # envelope it refuses is queued parked, so it never stands first in line failing every drain.
        self._envelope_problem = envelope_problem or (lambda _envelope: "")

    def allocate_msgid(self, at: datetime) -> str:
        """A new msgid; the 4-digit sequence wraps, uniqueness is enforced by the outbox table."""
        set_msgid_slot(self._db, self._msgid_slot)  # a no-op read unless the config changed it
        return next_msgid(self._db, self._fixmedins_code, at)

    def accumulators(self, psn_no: str, year: int) -> Mapping[str, Any]:
        """Stored accumulator state for a person and year ({} when none)."""
        rows = list(
            self._db.query("SELECT state FROM accumulators WHERE psn_no = ? AND year = ?", [psn_no, year])
        )
        return dict(json.loads(rows[0]["state"])) if rows else {}

    def record(self, record: SettlementRecord) -> None:
        """Write everything a settlement decides in one transaction; nothing is written on any error."""
        try:
            # IMMEDIATE: the duplicate and accumulator checks below must read what this write replaces.
            with immediate(self._db):
                self._refuse_duplicate(record.chrg_bchno)
                self._swap_accumulators(record)
                amounts = [str(record.medfee_sumamt), str(record.fund_pay_sumamt), str(record.psn_part_amt)]
                result_text = _dumps(record.result)
                self._db.execute(
                    "INSERT INTO settlements (msgid, chrg_bchno, psn_no, med_type, identified_by, setl_time,"
                    " medfee_sumamt, fund_pay_sumamt, psn_part_amt, result, year, offline)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        record.msgid,
                        record.chrg_bchno,
                        record.psn_no,
                        record.med_type,
                        record.identified_by,
                        record.setl_time.isoformat(),
                        *amounts,
                        result_text,
                        record.year,
                        int(record.offline),
                    ],
                )
                problem, envelope_text = self._queue(record)
                open_payment(self._db, record, self._clock.now(), collects=self._collects)
                audit.append(
                    self._db,
                    self._clock.now(),
                    "terminal",
                    "settle",
                    record.psn_no,
                    {
                        "msgid": record.msgid,
                        "chrg_bchno": record.chrg_bchno,
                        "identified_by": record.identified_by,
                        "medfee_sumamt": str(record.medfee_sumamt),
                        "psn_part_amt": str(record.psn_part_amt),
                        "offline": record.offline,
                        # The record covers the ledger row's amounts and the queued envelope, exactly as
                        # written: editing either afterwards is caught (store/audit_check.py).
                        "amounts_digest": amounts_digest(amounts[0], amounts[1], amounts[2], result_text),
                        "envelope_digest": envelope_digest(envelope_text),
                    },
                )
                if problem:
                    audit.append(
                        self._db, self._clock.now(), "terminal", "parked", record.msgid,
                        {"infno": record.infno, "reason": problem},
                    )  # fmt: skip
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"settlement {record.msgid} could not be recorded: {exc}") from exc
        except STORAGE_FAILURES as exc:
            # e.g. StoreBusyError when another writer held the lock beyond busy_timeout: nothing was
            # recorded, and the patient can confirm again. Same kind (store/guard.py made it), more detail.
            raise type(exc)(f"settlement {record.msgid} was not recorded: {exc}") from exc

    def _queue(self, record: SettlementRecord) -> tuple[str, str]:
        now = self._clock.now()
        problem = self._envelope_problem(record.envelope)
        envelope_text = _dumps(record.envelope)
        self._db.execute(
            "INSERT INTO outbox (msgid, infno, envelope, created_at, psn_no, state, last_error, parked_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                record.msgid, record.infno, envelope_text, now.isoformat(), record.psn_no,
                "parked" if problem else "pending", problem[:500], now.isoformat() if problem else None,
            ],
        )  # fmt: skip
        return problem, envelope_text

    def settlement(self, msgid: str) -> dict[str, Any]:
        """One recorded settlement with its stored result."""
        rows = list(self._db.query("SELECT * FROM settlements WHERE msgid = ?", [msgid]))
        if not rows:
            raise StoreError(f"no settlement with msgid {msgid}")
        row = dict(rows[0])
        row["result"] = json.loads(row["result"])
        row["offline"] = bool(row["offline"])
        return row

    def pending_outbox(self, limit: int = 100) -> list[dict[str, Any]]:
        """Outbox entries not yet delivered, oldest first."""
        rows = self._db.query(
            "SELECT seq, msgid, infno, envelope, created_at, attempts FROM outbox"
            " WHERE state = 'pending' ORDER BY seq LIMIT ?",
            [limit],
        )
        return [{**row, "envelope": json.loads(row["envelope"])} for row in rows]

    def settlement_of(self, chrg_bchno: str) -> dict[str, Any] | None:
        """The recorded settlement of a bill (msgid and amounts), None when the ledger has none."""
        rows = list(
            self._db.query(
                "SELECT msgid, psn_no, identified_by, setl_time, medfee_sumamt, fund_pay_sumamt,"
                f" psn_part_amt FROM settlements WHERE chrg_bchno = ? AND {LIVE}",
                [chrg_bchno],
            )
        )
        return dict(rows[0]) if rows else None

    def paid_settlement_of(self, chrg_bchno: str) -> dict[str, Any] | None:
        """Like settlement_of, but only once the checkout is complete: its cash share paid, none due, or
        collected outside (a settlement whose payment is still open may yet be reversed — the HIS is told
        nothing about it until then)."""
        rows = list(
            self._db.query(
                "SELECT s.msgid, s.psn_no, s.identified_by, s.setl_time, s.medfee_sumamt,"
                " s.fund_pay_sumamt, s.psn_part_amt FROM settlements s"
                " LEFT JOIN payments p ON p.msgid = s.msgid"
                f" WHERE s.chrg_bchno = ? AND s.{LIVE}"
                " AND (p.state IS NULL OR p.state IN ('paid', 'no_cash', 'external'))",
                [chrg_bchno],
            )
        )
        return dict(rows[0]) if rows else None

    def settled_msgids(self) -> list[str]:
        """Every recorded settlement's msgid, in settlement-time order."""
        rows = self._db.query("SELECT msgid FROM settlements ORDER BY setl_time")
        return [str(row["msgid"]) for row in rows]

    def is_settled(self, chrg_bchno: str) -> bool:
        """Whether this bill already has a recorded settlement."""
        return bool(
            list(self._db.query(f"SELECT 1 FROM settlements WHERE chrg_bchno = ? AND {LIVE}", [chrg_bchno]))
        )

    def _refuse_duplicate(self, chrg_bchno: str) -> None:
        rows = list(
            self._db.query(f"SELECT msgid FROM settlements WHERE chrg_bchno = ? AND {LIVE}", [chrg_bchno])
        )
        if rows:
            raise DuplicateSettlementError(
                f"bill {chrg_bchno} was already settled (msgid {rows[0]['msgid']}); it is not charged again"
            )

    def _swap_accumulators(self, record: SettlementRecord) -> None:
        # Compare-and-set: the estimate was priced against accumulators_before; if another
        # settlement moved them since, pricing again is the only honest answer.
        current = self.accumulators(record.psn_no, record.year)
        if _dumps(current) != _dumps(record.accumulators_before):
            raise StoreError("year-to-date totals changed since the bill was priced; price it again")
        self._db.execute(
            "INSERT INTO accumulators (psn_no, year, state, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(psn_no, year) DO UPDATE SET"
            " state = excluded.state, updated_at = excluded.updated_at",
            [record.psn_no, record.year, _dumps(record.accumulators_after), self._clock.now().isoformat()],
        )
