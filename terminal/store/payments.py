"""The payment saga's rows (one per settlement) and the insurance reversal that ends a failed one.

Every change of a saga's state commits with its audit record and the phase it reached; the reversal of
the insurance part (the queued 2207 voided, or a 2208 queued behind a delivered one) commits in the same
transaction as the year-to-date totals it restores and the saga's final state.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlite_utils

from terminal.domain import INFNO_REVERSE, SettlementRecord
from terminal.errors import LaterSettlementsError, RefundRefusedError, StoreError
from terminal.payment_types import Payment, fen_of, out_trade_no_for
from terminal.ports import Revert
from terminal.store import audit
from terminal.store.db import immediate
from terminal.store.outbox import take_out_of_accumulators
from terminal.store.payment_refusals import NEVER_SETTLED, refunding
from terminal.store.payment_rows import header_of, stored_header
from terminal.store.reversals import next_msgid, queue_reversal, reversal_from

# Saga states nothing retries (pipeline/payment.py and pipeline/refunds.py name them all). refund_manual
# is one: the gateway refused the refund for good, so staff hand the money back (the day report lists it).
# refunded_by_hand: staff recorded handing that money back (store/hand_refunds.py).
FINAL = ("paid", "reversed", "no_cash", "external", "refunded", "refund_manual", "refunded_by_hand")
# Money the patient is owed back: refunds being retried, or left to staff (listed until they end).
OWED = ("refunding", "refund_due", "refund_manual")
# Fields a retry may change without a phase and an audit record of its own (the same answer again).
COUNTERS = frozenset({"polls", "attempts", "last_error"})
# A counter refund (退费) may start from these: the checkout completed.
REFUNDABLE = ("paid", "no_cash", "external")
CHARGING = "charging"  # the one state a gateway's "paid" completes (complete_paid)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def open_payment(
    db: sqlite_utils.Database, record: SettlementRecord, at: datetime, collects: bool = True
) -> None:
    """Inside the settlement's transaction: its saga row, so no settlement exists without one.

    Without a gateway (collects False) it opens at its end "external": the cash share is taken outside.
    """
    cash = str(record.result.get("setlinfo", {}).get("psn_cash_pay", "0"))
    estimate = fen_of(Decimal(cash))
    state, phases = ("settled", ["settled"]) if collects else ("external", ["settled", "external"])
    db.execute(
        "INSERT INTO payments (msgid, out_trade_no, chrg_bchno, psn_no, estimate_fen, fen, basis, state,"
        " phases, created_at, updated_at, header) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            record.msgid, out_trade_no_for(record.msgid), record.chrg_bchno, record.psn_no,
            estimate, None if collects else estimate, "" if collects else "local", state,
            _dumps(phases), at.isoformat(), at.isoformat(), header_of(record.envelope),
        ],
    )  # fmt: skip


def _payment(row: Mapping[str, Any]) -> Payment:
    expires = row["expires_at"]
    return Payment(
        msgid=str(row["msgid"]),
        out_trade_no=str(row["out_trade_no"]),
        chrg_bchno=str(row["chrg_bchno"]),
        psn_no=str(row["psn_no"]),
        estimate_fen=int(row["estimate_fen"]),
        fen=None if row["fen"] is None else int(row["fen"]),
        basis=str(row["basis"]),
        state=str(row["state"]),
        channel=str(row["channel"]),
        wallet=str(row["wallet"]),
        transaction_id=str(row["transaction_id"]),
        code_url=str(row["code_url"]),
        expires_at=datetime.fromisoformat(expires) if expires else None,
        polls=int(row["polls"]),
        out_refund_no=str(row["out_refund_no"]),
        reason=str(row["reason"]),
        reversal=str(row["reversal"]),
        phases=tuple(json.loads(row["phases"])),
        attempts=int(row["attempts"]),
        last_error=str(row["last_error"]),
    )


# Columns advance() may set besides state and phases.
SETTABLE = frozenset(
    {"fen", "basis", "channel", "wallet", "transaction_id", "code_url", "expires_at", "polls",
     "out_refund_no", "reason", "attempts", "last_error"}
)  # fmt: skip


class PaymentStore:
    """The PaymentLedger port over SQLite (pipeline/payment_ports.py)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def get(self, msgid: str) -> Payment | None:
        """One settlement's saga, None when it has none (settled before migration 0014)."""
        rows = list(self._db.query("SELECT * FROM payments WHERE msgid = ?", [msgid]))
        return _payment(rows[0]) if rows else None

    def unfinished(self) -> list[Payment]:
        """Every saga not at one of its ends, oldest first."""
        marks = ", ".join("?" for _ in FINAL)
        rows = self._db.query(
            f"SELECT * FROM payments WHERE state NOT IN ({marks}) ORDER BY created_at, msgid", list(FINAL)
        )
        return [_payment(row) for row in rows]

    def of_day(self, day: str) -> list[Payment]:
        """Every saga whose settlement was made on one day (yyyy-mm-dd), in time order."""
        rows = self._db.query(
            "SELECT p.* FROM payments p JOIN settlements s ON s.msgid = p.msgid"
            " WHERE substr(s.setl_time, 1, 10) = ? ORDER BY s.setl_time, p.msgid",
            [day],
        )
        return [_payment(row) for row in rows]

    def advance(
        self, msgid: str, state: str, phase: str, at: datetime, actor: str = "terminal", **fields: Any
    ) -> Payment:
        """Move a saga to `state`, noting `phase` and setting `fields`, with its audit record.

        The same state and phase again with only counters changed (a retry meeting the same answer) is
        counted in the row alone: no new phase, no new audit record (the first of the run has both).
        """
        unknown = set(fields) - SETTABLE
        if unknown:
            raise ValueError(f"not payment columns: {sorted(unknown)}")
        with immediate(self._db):
            current = self.get(msgid)
            if current is None:
                raise StoreError(f"no payment for settlement {msgid}")
            values = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in fields.items()}
            sets = "".join(f", {name} = ?" for name in values)
            repeated = current.phases[-1:] == (phase,) and set(values) <= COUNTERS
            if state == current.state and repeated:
                self._db.execute(
                    f"UPDATE payments SET updated_at = ?{sets} WHERE msgid = ?",
                    [at.isoformat(), *values.values(), msgid],
                )
                return self._found(msgid)
            self._db.execute(
                f"UPDATE payments SET state = ?, phases = ?, updated_at = ?{sets} WHERE msgid = ?",
                [state, _dumps([*current.phases, phase]), at.isoformat(), *values.values(), msgid],
            )
            audit.append(
                self._db, at, actor, "payment", msgid,
                {"from": current.state, "to": state, "phase": phase, **values},
            )  # fmt: skip
        found = self.get(msgid)
        assert found is not None
        return found

    def binding(self, msgid: str) -> tuple[str, Mapping[str, Any] | None]:
        """The 2207's outbox state and, once delivered, the centre's binding output."""
        rows = list(self._db.query("SELECT state FROM outbox WHERE msgid = ?", [msgid]))
        state = str(rows[0]["state"]) if rows else ""
        out = list(self._db.query("SELECT output FROM upstream_results WHERE msgid = ?", [msgid]))
        return state, (dict(json.loads(out[0]["output"])) if out else None)

    def complete_paid(self, msgid: str, at: datetime, actor: str = "terminal", **fields: Any) -> Payment:
        """A charging saga the gateway says is paid: `paid`, or `refunding` when the centre will never
        have its settlement (the 2207 refused or voided), decided and written in one transaction.
        Only a charging saga moves; any other is returned unchanged (its own path ends it).

        The outbox state is read inside the IMMEDIATE transaction that writes the move, so a refusal or a
        technician's void committing in another process lands wholly before it (then refunding here) or
        wholly after it (then its own transaction moves the paid saga to refunding): never paid and voided.
        """
        unknown = set(fields) - SETTABLE
        if unknown:
            raise ValueError(f"not payment columns: {sorted(unknown)}")
        with immediate(self._db):
            rows = list(self._db.query("SELECT * FROM payments WHERE msgid = ?", [msgid]))
            if not rows:
                raise StoreError(f"no payment for settlement {msgid}")
            if rows[0]["state"] != CHARGING:
                # Moved on meanwhile (abandoned, reversed, already paid): only a charging saga is paid.
                return _payment(rows[0])
            entry = list(self._db.query("SELECT state FROM outbox WHERE msgid = ?", [msgid]))
            if entry and entry[0]["state"] in NEVER_SETTLED:
                # Paid while the centre refused the 2207 (or it was voided): the money goes back.
                why = "centre refused: the settlement was refused while the patient paid"
                refunding(self._db, rows[0], why, at, actor, **fields)
                return self._found(msgid)
            return self.advance(msgid, "paid", "paid", at, actor, **fields)

    def owed(self) -> list[Payment]:
        """Every saga still owing the patient money back (retried, or left to staff), oldest first."""
        marks = ", ".join("?" for _ in OWED)
        rows = self._db.query(
            f"SELECT * FROM payments WHERE state IN ({marks}) ORDER BY created_at, msgid", list(OWED)
        )
        return [_payment(row) for row in rows]

    def _found(self, msgid: str) -> Payment:
        found = self.get(msgid)
        assert found is not None
        return found

    def reverse(
        self,
        msgid: str,
        phase: str,
        reason: str,
        at: datetime,
        revert: Revert,
        actor: str = "terminal",
        end: str = "reversed",
    ) -> Payment:
        """Undo the insurance part and end the saga at `end` (reversed, or refund_manual), in one transaction.

        The 2207 never reached the centre (pending with no unknown outcome, or parked): it is voided and
        never sent. Delivered (its envelope possibly pruned since), or possibly committed (unknown
        outcome): a 2208 is queued behind it, built on the 2207's header kept with the payment row.
        Refused, or voided by a technician: the centre never settled it. In every case the
        year-to-date totals are restored (once) and the settlement's bill is free again.
        """
        with immediate(self._db):
            current = self.get(msgid)
            if current is None:
                raise StoreError(f"no payment for settlement {msgid}")
            if current.state in ("reversed", end):
                return current
            how, restored = self._undo_insurance(current, reason, at, revert, actor)
            self._db.execute(
                "UPDATE payments SET state = ?, reversal = ?, reason = ?, phases = ?, updated_at = ?"
                " WHERE msgid = ?",
                [end, how, reason[:500], _dumps([*current.phases, phase]), at.isoformat(), msgid],
            )
            audit.append(
                self._db, at, actor, "payment_reversed", msgid,
                {"phase": phase, "reason": reason, "insurance": how, "accumulators_restored": restored,
                 "to": end},
            )  # fmt: skip
        found = self.get(msgid)
        assert found is not None
        return found

    def approve_refund(
        self, msgid: str, at: datetime, cashier: str, supervisor: str, reason: str, out_refund_no: str
    ) -> Payment:
        """Record an approved counter refund (退费) as `withdrawing`, audited with both people.

        RefundRefusedError unless the checkout completed and the settlement stands; LaterSettlementsError
        when the same person has later settlements that stand (no out-of-order reversal).
        """
        with immediate(self._db):
            current = self.get(msgid)
            if current is None:
                raise RefundRefusedError(f"no settlement {msgid} with a payment on this terminal")
            if current.state not in REFUNDABLE:
                raise RefundRefusedError(
                    f"settlement {msgid} is {current.state}; only a completed one is refunded"
                )
            rows = list(self._db.query("SELECT rowid, reversed_at FROM settlements WHERE msgid = ?", [msgid]))
            if not rows or rows[0]["reversed_at"] is not None:
                raise RefundRefusedError(f"settlement {msgid} was reversed already")
            later = [
                str(r["msgid"])
                for r in self._db.query(
                    "SELECT msgid FROM settlements WHERE psn_no = ? AND rowid > ? AND reversed_at IS NULL"
                    " ORDER BY rowid",
                    [current.psn_no, rows[0]["rowid"]],
                )
            ]
            if later:
                raise LaterSettlementsError(
                    f"{current.psn_no} has {len(later)} later settlement(s) ({', '.join(later)});"
                    " refund those first"
                )
            # attempts and last_error count this refund's refusals from nought (not the QR's creates).
            self._db.execute(
                "UPDATE payments SET state = 'withdrawing', out_refund_no = ?, reason = ?, phases = ?,"
                " attempts = 0, last_error = '', updated_at = ? WHERE msgid = ?",
                [
                    out_refund_no,
                    reason[:500],
                    _dumps([*current.phases, "refund_approved"]),
                    at.isoformat(),
                    msgid,
                ],
            )
            audit.append(
                self._db, at, cashier, "refund_approved", msgid,
                {"approved_by": supervisor, "reason": reason, "from": current.state, "fen": current.fen,
                 "out_refund_no": out_refund_no},
            )  # fmt: skip
        found = self.get(msgid)
        assert found is not None
        return found

    def withdraw(self, msgid: str, at: datetime, revert: Revert, actor: str, money_back: bool) -> Payment:
        """An approved refund's insurance part undone (void or 2208, totals restored), in one transaction.

        Then `refund_due` while the patient's money is still to go back through the gateway, else
        `refunded`. A saga past `withdrawing` is returned as it is (a resumed refund does this once).
        """
        with immediate(self._db):
            current = self.get(msgid)
            if current is None:
                raise StoreError(f"no payment for settlement {msgid}")
            if current.state != "withdrawing":
                return current
            how, restored = self._undo_insurance(current, current.reason or "refund", at, revert, actor)
            state = "refund_due" if money_back else "refunded"
            self._db.execute(
                "UPDATE payments SET state = ?, reversal = ?, phases = ?, updated_at = ? WHERE msgid = ?",
                [state, how, _dumps([*current.phases, "insurance_reversed"]), at.isoformat(), msgid],
            )
            audit.append(
                self._db, at, actor, "refund_insurance", msgid,
                {"insurance": how, "accumulators_restored": restored, "to": state},
            )  # fmt: skip
        found = self.get(msgid)
        assert found is not None
        return found

    def refunds_of_day(self, day: str) -> list[Payment]:
        """Sagas whose money went back through the gateway on one day (yyyy-mm-dd), in time order."""
        rows = self._db.query(
            "SELECT * FROM payments WHERE out_refund_no != '' AND state IN ('refunded', 'reversed')"
            " AND substr(updated_at, 1, 10) = ? ORDER BY updated_at, msgid",
            [day],
        )
        return [_payment(row) for row in rows]

    def _undo_insurance(
        self, current: Payment, reason: str, at: datetime, revert: Revert, actor: str
    ) -> tuple[str, bool]:
        """Inside the caller's transaction: void the queued 2207 or queue a 2208; restore the totals once."""
        msgid = current.msgid
        rows = list(self._db.query("SELECT seq, state, outcome_unknown FROM outbox WHERE msgid = ?", [msgid]))
        entry = rows[0] if rows else None
        how = "voided" if entry is not None and entry["state"] == "voided" else "refused"
        if entry is not None and (
            entry["state"] == "parked" or (entry["state"] == "pending" and not entry["outcome_unknown"])
        ):
            how = "voided"
            self._db.execute(
                "UPDATE outbox SET state = 'voided', last_error = ? WHERE seq = ?",
                [f"voided: {reason}"[:500], entry["seq"]],
            )
            audit.append(self._db, at, actor, "void", msgid, {"reason": reason, "by": "payment saga"})
        elif entry is None or entry["state"] in ("pending", "delivered"):
            # No outbox row: only delivered entries are ever dropped (prune_delivered), so it was delivered.
            how = INFNO_REVERSE
            self._queue_reversal(msgid, current.psn_no, at, actor)
        restored = take_out_of_accumulators(self._db, msgid, revert, at)
        # The first undoing stands (a refusal may have marked it before the saga reversed it).
        self._db.execute(
            "UPDATE settlements SET reversed_at = COALESCE(reversed_at, ?) WHERE msgid = ?",
            [at.isoformat(), msgid],
        )
        return how, restored

    def _queue_reversal(self, omsgid: str, psn_no: str, at: datetime, actor: str) -> None:
        template = stored_header(self._db, omsgid)
        if template is None:
            raise StoreError(f"settlement {omsgid} has no 2207 header to reverse it by; nothing was changed")
        msgid = next_msgid(self._db, str(template.get("fixmedins_code", "")), at)
        queue_reversal(
            self._db, omsgid, psn_no, msgid, reversal_from(template, msgid, omsgid, psn_no, at), at, actor
        )
