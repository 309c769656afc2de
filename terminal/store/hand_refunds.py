"""Money staff handed back by hand: a `refund_manual` saga ended `refunded_by_hand`, audited with who and
the counter's receipt number, so it leaves the day report's owed list."""

from __future__ import annotations

import json
from datetime import datetime

import sqlite_utils

from terminal.errors import RefundRefusedError
from terminal.payment_types import Payment
from terminal.store import audit
from terminal.store.db import immediate
from terminal.store.payments import PaymentStore

REFUND_MANUAL = "refund_manual"
REFUNDED_BY_HAND = "refunded_by_hand"


def record_hand_refund(
    db: sqlite_utils.Database,
    msgid: str,
    receipt_no: str,
    at: datetime,
    actor: str,
    named_supervisor: str = "",
) -> Payment:
    """End a refund_manual saga as refunded_by_hand; RefundRefusedError unless it is owed by hand.

    `actor` is who vouches for it (the audit's actor): the signed-in supervisor at the office page, or
    the operator at the CLI, who signs in as nobody; there `named_supervisor` is the supervisor the
    operator says handed it back, recorded as a name only (not verified). `receipt_no`: the counter's own
    receipt (or voucher) number for the cash paid out, so the audit points at the paper.
    """
    receipt = receipt_no.strip()
    if not receipt:
        raise RefundRefusedError("recording a refund by hand needs the counter's receipt number")
    with immediate(db):
        current = PaymentStore(db).get(msgid)
        if current is None:
            raise RefundRefusedError(f"no settlement {msgid} with a payment on this terminal")
        if current.state != REFUND_MANUAL:
            raise RefundRefusedError(
                f"settlement {msgid} is {current.state}; only money owed by hand (refund_manual) is recorded"
            )
        db.execute(
            "UPDATE payments SET state = ?, phases = ?, updated_at = ? WHERE msgid = ?",
            [
                REFUNDED_BY_HAND,
                json.dumps([*current.phases, REFUNDED_BY_HAND], ensure_ascii=False),
                at.isoformat(),
                msgid,
            ],
        )
        audit.append(
            db, at, actor, "refunded_by_hand", msgid,
            {"from": REFUND_MANUAL, "to": REFUNDED_BY_HAND, "fen": current.fen or 0,
             "receipt_no": receipt[:64], "out_trade_no": current.out_trade_no,
             **({"named_supervisor": named_supervisor} if named_supervisor else {})},
        )  # fmt: skip
    found = PaymentStore(db).get(msgid)
    assert found is not None
    return found
