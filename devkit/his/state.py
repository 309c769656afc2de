"""The reference HIS's state: bills per person in its own SQLite file, the terminal token, fault switches."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from devkit.his.faults import Faults
from devkit.transaction import locked_transaction
from terminal.bill_json import bill_from_json
from terminal.settlement.money import fen

SCHEMA = """
CREATE TABLE IF NOT EXISTS bills (
    chrg_bchno TEXT PRIMARY KEY, psn_no TEXT NOT NULL, fixmedins_code TEXT, bill TEXT NOT NULL,
    state TEXT NOT NULL, msgid TEXT, settled TEXT, added INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS bills_person ON bills(psn_no, state);
"""


class SettledIn(BaseModel):
    """The body of POST /bills/<chrg_bchno>/settled."""

    model_config = ConfigDict(extra="forbid")

    msgid: Annotated[str, Field(min_length=1, max_length=30)]
    setl_time: Annotated[str, Field(min_length=1)]
    medfee_sumamt: Decimal
    fund_pay_sumamt: Decimal
    psn_part_amt: Decimal


class Refused(Exception):
    """A request the HIS answers with a 4xx and a reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def loads(text: str) -> Any:
    """JSON with amounts read as Decimal, as the HIS keeps bills."""
    return json.loads(text, parse_float=Decimal)


class His:
    """The HIS's state: bills per person in its own SQLite file, the terminal token and fault switches."""

    def __init__(self, db_path: Path, token: str) -> None:
        self._conn = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(SCHEMA)
        # One lock for the whole HIS: requests are few and correctness beats concurrency here.
        self._lock = threading.Lock()
        self.token = token
        self.faults = Faults()

    def close(self) -> None:
        """Close the database."""
        self._conn.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return locked_transaction(self._conn, self._lock)

    def add_bill(self, psn_no: str, bill: Mapping[str, Any], fixmedins_code: str | None = None) -> str:
        """Add (or replace, unpaid again) a person's bill; BillError when it is not a valid bill."""
        parsed = bill_from_json(bill)
        with self._tx() as conn:
            serial = conn.execute("SELECT COALESCE(MAX(added), 0) + 1 FROM bills").fetchone()[0]
            conn.execute(
                "INSERT OR REPLACE INTO bills (chrg_bchno, psn_no, fixmedins_code, bill, state, added)"
                " VALUES (?, ?, ?, ?, 'pending', ?)",
                [
                    parsed.chrg_bchno,
                    psn_no,
                    fixmedins_code,
                    json.dumps(bill, ensure_ascii=False, default=str),
                    serial,
                ],
            )
        return parsed.chrg_bchno

    def pending(self, psn_no: str, fixmedins_code: str) -> list[dict[str, Any]]:
        """The person's unpaid bills at this institution, as the listing shows them."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT bill FROM bills WHERE psn_no = ? AND state = 'pending'"
                " AND (fixmedins_code IS NULL OR fixmedins_code = ?) ORDER BY added",
                [psn_no, fixmedins_code],
            ).fetchall()
        out = []
        for row in rows:
            bill = bill_from_json(loads(row["bill"]))
            out.append(
                {
                    "chrg_bchno": bill.chrg_bchno,
                    "med_type": bill.med_type,
                    "begntime": bill.begntime.isoformat(),
                    "medfee_sumamt": str(fen(bill.medfee_sumamt)),
                    "items": len(bill.lines),
                    **({"dept_name": bill.dept_name} if bill.dept_name else {}),
                    **({"dr_name": bill.dr_name} if bill.dr_name else {}),
                }
            )
        return out

    def bill(self, chrg_bchno: str) -> dict[str, Any] | None:
        """An unpaid bill as stored, None when unknown or paid."""
        with self._lock:
            row = self._conn.execute(
                "SELECT bill FROM bills WHERE chrg_bchno = ? AND state = 'pending'", [chrg_bchno]
            ).fetchone()
        return loads(row["bill"]) if row is not None else None

    def settle(self, chrg_bchno: str, settled: SettledIn) -> None:
        """Mark the bill paid once; the same msgid again is a no-op, another msgid is refused (409)."""
        with self._tx() as conn:
            row = conn.execute("SELECT * FROM bills WHERE chrg_bchno = ?", [chrg_bchno]).fetchone()
            if row is None:
                raise Refused(404, "not found")
            if row["state"] == "paid":
                if row["msgid"] == settled.msgid:
                    return
                raise Refused(409, f"bill {chrg_bchno} was settled already by msgid {row['msgid']}")
            total = fen(bill_from_json(loads(row["bill"])).medfee_sumamt)
            if fen(settled.medfee_sumamt) != total:
                raise Refused(422, f"medfee_sumamt {settled.medfee_sumamt} differs from the bill's {total}")
            conn.execute(
                "UPDATE bills SET state = 'paid', msgid = ?, settled = ? WHERE chrg_bchno = ?",
                [settled.msgid, settled.model_dump_json(), chrg_bchno],
            )

    def bills(self) -> list[dict[str, Any]]:
        """Every bill with its state and, once paid, what the terminal reported."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT chrg_bchno, psn_no, state, msgid, settled FROM bills ORDER BY added"
            ).fetchall()
        return [{**dict(r), "settled": json.loads(r["settled"]) if r["settled"] else None} for r in rows]
