"""A settlement the centre will never have (refused at sync, or voided by a technician), and what it owes.

Offline the patient pays the estimate before the 2207 reaches the centre. When the centre then refuses it,
or a technician voids the parked entry, the insurance part is gone: in the same transaction as the refusal
or the void the settlement stops standing (`reversed_at`: the day report's totals leave it out, its bill
may be settled again), and the cash taken for it is owed back. A paid saga moves to `refunding` under its
order's one refund number, and the payment worker's next pass refunds it through the gateway
(pipeline/payment.py); cash collected at the counter (`external`) cannot go back through the gateway, so
the saga ends `refund_manual`: listed as owed until staff record handing it back (store/hand_refunds.py).
Nothing here calls the gateway.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlite_utils

from terminal.payment_types import out_refund_no_for
from terminal.store import audit

CENTRE_REFUSED = "centre_refused"  # the phase, and how the day report names the refund's reason
# The 2207's outbox states in which the centre will never have the settlement.
NEVER_SETTLED = ("refused", "voided")
BY_HAND = "collected at the counter, refund by hand"


def not_settled(db: sqlite_utils.Database, msgid: str, why: str, at: datetime, actor: str) -> str:
    """Inside the caller's transaction (a refusal, a void): the settlement stops standing, its cash owed.

    Returns the saga's state afterwards ("" when the settlement has none).
    """
    db.execute(
        "UPDATE settlements SET reversed_at = COALESCE(reversed_at, ?) WHERE msgid = ?",
        [at.isoformat(), msgid],
    )
    rows = list(db.query("SELECT * FROM payments WHERE msgid = ?", [msgid]))
    if not rows:
        return ""
    row = rows[0]
    if row["state"] == "paid" and row["fen"]:
        refunding(db, row, f"centre refused: {why}", at, actor)
        return "refunding"
    if row["state"] == "external" and row["fen"]:
        _by_hand(db, row, f"centre refused: {why}; {BY_HAND}", at, actor)
        return "refund_manual"
    # No cash taken by this terminal (none due), or the saga is not at an end: it checks the refusal
    # itself before it completes (PaymentStore.complete_paid) and while it charges (pipeline/payment.py).
    return str(row["state"])


def refunding(
    db: sqlite_utils.Database, row: Any, reason: str, at: datetime, actor: str, **fields: Any
) -> None:
    """Inside the caller's transaction: a saga (its row) set to refunding with a full refund budget."""
    refund_no = out_refund_no_for(str(row["out_trade_no"]))
    values = {"out_refund_no": refund_no, "reason": reason[:500], "attempts": 0, "last_error": "", **fields}
    _move(db, row, "refunding", values, at, actor, {"fen": int(row["fen"] or 0)})


def _by_hand(db: sqlite_utils.Database, row: Any, reason: str, at: datetime, actor: str) -> None:
    outbox = list(db.query("SELECT state FROM outbox WHERE msgid = ?", [row["msgid"]]))
    how = str(outbox[0]["state"]) if outbox else "refused"
    values = {"reason": reason[:500], "reversal": how, "attempts": 0, "last_error": ""}
    _move(db, row, "refund_manual", values, at, actor, {"fen": int(row["fen"])})


def _move(
    db: sqlite_utils.Database,
    row: Any,
    state: str,
    values: dict[str, Any],
    at: datetime,
    actor: str,
    noted: dict[str, Any],
) -> None:
    phases = [*json.loads(row["phases"]), CENTRE_REFUSED]
    sets = "".join(f", {name} = ?" for name in values)
    db.execute(
        f"UPDATE payments SET state = ?, phases = ?, updated_at = ?{sets} WHERE msgid = ?",
        [state, json.dumps(phases, ensure_ascii=False), at.isoformat(), *values.values(), row["msgid"]],
    )
    audit.append(
        db, at, actor, "payment", str(row["msgid"]),
        {"from": row["state"], "to": state, "phase": CENTRE_REFUSED, **values, **noted},
    )  # fmt: skip
