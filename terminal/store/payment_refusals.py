"""A settlement the centre will never have (refused at sync, or voided by a technician) after it was paid.

Offline the patient pays the estimate before the 2207 reaches the centre. When the centre then refuses it,
or a technician voids the parked entry, the insurance part is gone, so the cash the patient paid for it
must go back: in the same transaction as the refusal or the void, a paid saga moves to `refunding` under
its order's one refund number, and the payment worker's next pass refunds it through the gateway
(pipeline/payment.py). Nothing here calls the gateway.
"""

from __future__ import annotations

import json
from datetime import datetime

import sqlite_utils

from terminal.payment_types import out_refund_no_for
from terminal.store import audit

CENTRE_REFUSED = "centre_refused"  # the phase, and how the day report names the refund's reason


def refund_when_paid(db: sqlite_utils.Database, msgid: str, why: str, at: datetime, actor: str) -> bool:
    """Inside the caller's transaction: a paid saga of `msgid` set to refunding; True when one was."""
    rows = list(db.query("SELECT state, fen, out_trade_no, phases FROM payments WHERE msgid = ?", [msgid]))
    if not rows or rows[0]["state"] != "paid" or not rows[0]["fen"]:
        # No cash taken by this terminal (none due, collected outside, or the saga is not at paid: it
        # checks the refusal itself before it completes).
        return False
    row = rows[0]
    refund_no = out_refund_no_for(str(row["out_trade_no"]))
    reason = f"centre refused: {why}"[:500]
    phases = [*json.loads(row["phases"]), CENTRE_REFUSED]
    db.execute(
        "UPDATE payments SET state = 'refunding', out_refund_no = ?, reason = ?, phases = ?, attempts = 0,"
        " last_error = '', updated_at = ? WHERE msgid = ?",
        [refund_no, reason, json.dumps(phases, ensure_ascii=False), at.isoformat(), msgid],
    )
    audit.append(
        db, at, actor, "payment", msgid,
        {"from": "paid", "to": "refunding", "phase": CENTRE_REFUSED, "reason": reason,
         "out_refund_no": refund_no, "fen": int(row["fen"])},
    )  # fmt: skip
    return True
