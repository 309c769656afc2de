"""A settlement's receipt as the ledger keeps it, and the audited count of its reprints (补打)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlite_utils

from terminal.store import audit
from terminal.store.db import immediate


def settlement_receipt(db: sqlite_utils.Database, msgid: str) -> dict[str, Any] | None:
    """The settlement's row, its setlinfo and its payment (None when the msgid is no settlement)."""
    rows = list(
        db.query(
            "SELECT s.msgid, s.chrg_bchno, s.psn_no, s.identified_by, s.setl_time, s.reversed_at, s.result,"
            " p.state AS payment_state, p.channel, p.wallet, p.transaction_id, p.fen"
            " FROM settlements s LEFT JOIN payments p ON p.msgid = s.msgid WHERE s.msgid = ?",
            [msgid],
        )
    )
    if not rows:
        return None
    row = dict(rows[0])
    row["setlinfo"] = json.loads(row.pop("result")).get("setlinfo", {})
    return row


def completed_unprinted(db: sqlite_utils.Database, limit: int = 50) -> list[str]:
    """Completed payments (paid, none due, collected outside) of standing settlements whose receipt no
    printing job has taken yet (printed_receipts has no row), oldest first."""
    rows = db.query(
        "SELECT p.msgid FROM payments p JOIN settlements s ON s.msgid = p.msgid"
        " LEFT JOIN printed_receipts r ON r.msgid = p.msgid"
        " WHERE p.state IN ('paid', 'no_cash', 'external') AND s.reversed_at IS NULL AND r.msgid IS NULL"
        " ORDER BY p.updated_at, p.msgid LIMIT ?",
        [limit],
    )
    return [str(row["msgid"]) for row in rows]


def note_reprint(db: sqlite_utils.Database, msgid: str, at: datetime, actor: str) -> int:
    """Audit one reprint by `actor`; returns which copy this is (1 for the first reprint)."""
    with immediate(db):
        seen = db.execute(
            "SELECT COUNT(*) FROM audit WHERE action = 'reprint' AND subject = ?", [msgid]
        ).fetchone()
        copy = int(seen[0]) + 1
        audit.append(db, at, actor, "reprint", msgid, {"copy": copy})
    return copy
