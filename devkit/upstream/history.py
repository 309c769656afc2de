"""Per-person history for gallery deltas: the upstream's year totals and recent settlements anywhere.

Every settlement, reversal or correction the upstream commits marks the person's history changed at
the next gallery version (`touch_history`, in the same transaction), so the next delta since an older
version carries it (docs/uplink.md, "Person history in the gallery delta").
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from devkit.upstream.state import Upstream
from terminal.clock import CST

HISTORY_DAYS = 120  # settlements listed back from the delta's day: a 90-day supply and a monthly limit


def touch_history(upstream: Upstream, conn: sqlite3.Connection, psn_no: str) -> None:
    """Inside a transaction: the person's history changed; it goes out with the next gallery version."""
    version = upstream.next_value(conn, "gallery_version")
    conn.execute(
        "INSERT INTO histories (psn_no, version) VALUES (?, ?)"
        " ON CONFLICT(psn_no) DO UPDATE SET version = excluded.version",
        [psn_no, version],
    )


def set_identities(upstream: Upstream, psn_no: str, identities: list[str]) -> int:
    """Record a person's 1101 idetinfo identity types (e.g. 低保); the gallery version it is at."""
    with upstream.transaction() as conn:
        if conn.execute("SELECT 1 FROM persons WHERE psn_no = ?", [psn_no]).fetchone() is None:
            raise ValueError(f"person {psn_no} is not known; add them with /admin/persons first")
        version = upstream.next_value(conn, "gallery_version")
        conn.execute(
            "INSERT INTO histories (psn_no, version, identities) VALUES (?, ?, ?)"
            " ON CONFLICT(psn_no) DO UPDATE SET version = excluded.version,"
            " identities = excluded.identities",
            [psn_no, version, json.dumps(identities)],
        )
    return version


def histories_since(conn: sqlite3.Connection, since: int, at: datetime) -> list[dict[str, Any]]:
    """The history of every person whose history changed after `since`, as of `at` (inside the lock)."""
    day = at.astimezone(CST).date()
    first = (day - timedelta(days=HISTORY_DAYS)).isoformat()
    out = []
    for row in conn.execute(
        "SELECT psn_no, identities FROM histories WHERE version > ? ORDER BY version", [since]
    ).fetchall():
        psn_no = row["psn_no"]
        acc = conn.execute(
            "SELECT state FROM accumulators WHERE psn_no = ? AND year = ?", [psn_no, day.year]
        ).fetchone()
        counters: dict[str, Any] = json.loads(acc["state"]).get("counters", {}) if acc else {}
        settled = conn.execute(
            "SELECT msgid, fixmedins_code, day, result FROM settlements"
            " WHERE psn_no = ? AND state = 'settled' ORDER BY arrival",
            [psn_no],
        ).fetchall()
        counted = [
            r["msgid"]
            for r in settled
            if json.loads(r["result"]).get("accumulator_delta", {}).get("year") == day.year
        ]
        visits = [_visit(r) for r in settled if first <= r["day"] <= day.isoformat()]
        out.append(
            {
                "psn_no": psn_no,
                "as_of": at.astimezone(CST).isoformat(timespec="seconds"),
                "totals": {
                    "year": day.year,
                    "counters": {str(k): str(v) for k, v in counters.items()},
                    "counted": counted,
                },
                "visits": visits,
                "identities": json.loads(row["identities"]),
            }
        )
    return out


def _visit(row: sqlite3.Row) -> dict[str, Any]:
    result = json.loads(row["result"])
    items: dict[str, Decimal] = {}
    diagnoses: list[str] = []
    for line in result.get("feedetail", []):
        code = str(line["med_list_codg"])
        items[code] = items.get(code, Decimal(0)) + Decimal(str(line["cnt"]))
        if line.get("dise_codg") and line["dise_codg"] not in diagnoses:
            diagnoses.append(str(line["dise_codg"]))
    return {
        "msgid": row["msgid"],
        "day": date.fromisoformat(row["day"]).isoformat(),
        "med_type": str(result.get("setlinfo", {}).get("med_type", "")) or "11",
        "fixmedins_code": row["fixmedins_code"],
        "items": [{"med_list_codg": code, "cnt": str(cnt)} for code, cnt in items.items()],
        "diagnoses": diagnoses,
    }
