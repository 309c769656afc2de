"""Which settled bills the hospital's bill source (HIS) still has to hear about."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from terminal.store.journal import WorkerJournal


class NoticeJournal(WorkerJournal):
    """The his_notices table: a row per bill, plain rows in and out.

    `loaded` when the patient chose the bill from the source, `pending` once the ledger holds its
    settlement, then `sent` (the source answered 200) or `refused` (final; needs a person). Durable,
    so a notice survives a restart and bills of the pharmacy basket (never loaded) are never sent.
    """

    def loaded(self, chrg_bchno: str, at: str) -> None:
        """The patient chose this bill from the source: once settled, the source must hear of it."""
        with self._db() as db:
            db.execute(
                "INSERT OR IGNORE INTO his_notices (chrg_bchno, state, at) VALUES (?, 'loaded', ?)",
                (chrg_bchno, at),
            )

    def settled(
        self, chrg_bchno: str, msgid: str, body: Mapping[str, str], at: str, *, listed: bool = False
    ) -> bool:
        """Queue the notice of a loaded bill (or of one the source still lists); True when it is pending."""
        text = json.dumps(dict(body), ensure_ascii=False)
        with self._db() as db:
            if listed:
                # The source still lists a bill the ledger settled: the notice was never recorded
                # (a crash right after the settlement) or is still waiting; never resend a sent one.
                db.execute(
                    "INSERT INTO his_notices (chrg_bchno, state, msgid, body, at)"
                    " VALUES (?, 'pending', ?, ?, ?) ON CONFLICT (chrg_bchno) DO UPDATE SET"
                    " state = 'pending', msgid = excluded.msgid, body = excluded.body, at = excluded.at"
                    " WHERE his_notices.state = 'loaded'",
                    (chrg_bchno, msgid, text, at),
                )
            else:
                db.execute(
                    "UPDATE his_notices SET state = 'pending', msgid = ?, body = ?, at = ?"
                    " WHERE chrg_bchno = ? AND state = 'loaded'",
                    (msgid, text, at, chrg_bchno),
                )
            found = db.execute("SELECT state FROM his_notices WHERE chrg_bchno = ?", (chrg_bchno,)).fetchone()
        return found is not None and found[0] == "pending"

    def waiting(self, state: str) -> list[str]:
        """Bill numbers in a state, oldest first."""
        with self._db() as db:
            rows = db.execute(
                "SELECT chrg_bchno FROM his_notices WHERE state = ? ORDER BY at", (state,)
            ).fetchall()
        return [str(r[0]) for r in rows]

    def pending(self) -> list[tuple[str, dict[str, str]]]:
        """(bill number, notice body) of each notice the source has not heard yet, oldest first."""
        with self._db() as db:
            rows = db.execute(
                "SELECT chrg_bchno, body FROM his_notices WHERE state = 'pending' ORDER BY at"
            ).fetchall()
        return [(str(no), dict(json.loads(body))) for no, body in rows]

    def finish(self, chrg_bchno: str, state: str, at: str, detail: str = "") -> None:
        """Record an attempt: sent, refused, or still pending with the failure's detail."""
        with self._db() as db:
            db.execute(
                "UPDATE his_notices SET state = ?, attempts = attempts + 1, detail = ?, at = ?"
                " WHERE chrg_bchno = ?",
                (state, detail, at, chrg_bchno),
            )

    def row(self, chrg_bchno: str) -> dict[str, Any] | None:
        """One bill's notice row."""
        with self._db() as db:
            db.row_factory = sqlite3.Row
            found = db.execute("SELECT * FROM his_notices WHERE chrg_bchno = ?", (chrg_bchno,)).fetchone()
        return dict(found) if found is not None else None

    def summary(self) -> dict[str, int]:
        """How many notices are in each state."""
        with self._db() as db:
            rows = db.execute("SELECT state, COUNT(*) FROM his_notices GROUP BY state").fetchall()
        return {str(state): int(count) for state, count in rows}
