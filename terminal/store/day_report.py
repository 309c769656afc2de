"""What the daily reconciliation (对账) reads from the ledger: one day's settlements and its 3201 answer."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils


def settlements_of_day(db: sqlite_utils.Database, day: str) -> list[dict[str, Any]]:
    """Every settlement made on one day (yyyy-mm-dd), in order: its estimate and the centre's binding result.

    Each: msgid, chrg_bchno, psn_no, setl_time, reversed (bool), outbox (the 2207's state), local (the
    estimated setlinfo) and binding (the centre's setlinfo once delivered, else None).
    """
    rows = db.query(
        "SELECT s.msgid, s.chrg_bchno, s.psn_no, s.setl_time, s.reversed_at, s.result, o.state AS outbox,"
        " u.output FROM settlements s LEFT JOIN outbox o ON o.msgid = s.msgid"
        " LEFT JOIN upstream_results u ON u.msgid = s.msgid"
        " WHERE substr(s.setl_time, 1, 10) = ? ORDER BY s.setl_time, s.rowid",
        [day],
    )
    out = []
    for row in rows:
        local = json.loads(row["result"]).get("setlinfo", {})
        output = json.loads(row["output"]) if row["output"] else None
        binding = output.get("setlinfo") if isinstance(output, dict) else None
        out.append(
            {
                "msgid": str(row["msgid"]),
                "chrg_bchno": str(row["chrg_bchno"]),
                "psn_no": str(row["psn_no"]),
                "setl_time": str(row["setl_time"]),
                "reversed": row["reversed_at"] is not None,
                "outbox": str(row["outbox"] or ""),
                "local": dict(local) if isinstance(local, dict) else {},
                "binding": dict(binding) if isinstance(binding, dict) else None,
            }
        )
    return out


def totals_answer(db: sqlite_utils.Database, day: str) -> dict[str, Any] | None:
    """The day's stored 3201 exchange (what was sent, the upstream's answer, when), None when never asked."""
    rows = list(
        db.query("SELECT stmt_rslt, local, upstream, checked_at FROM upstream_totals WHERE day = ?", [day])
    )
    if not rows:
        return None
    row = rows[0]
    return {
        "stmt_rslt": str(row["stmt_rslt"]),
        "sent": json.loads(row["local"]),
        "answer": json.loads(row["upstream"]),
        "checked_at": str(row["checked_at"]),
    }
