"""Which receipts (by msgid) were sent to the printer, so a receipt never comes out twice."""

from __future__ import annotations

from typing import Any

from terminal.store.journal import WorkerJournal


class PrintJournal(WorkerJournal):
    """The printed_receipts table: a row per msgid, `printing`, then `printed` or `failed`.

    In memory is not enough: after a restart the session recovers a settled bill from the ledger with
    the same msgid, and its receipt must not come out twice. A row is written *before* the job is sent,
    so a crash mid-job leaves "printing" and the receipt is not printed again (a duplicate paper receipt
    reads like a second charge; a missing one is the smaller harm: the settlement is in the ledger).
    A failed job is never claimed again either: the printer may have stopped halfway through the
    receipt, so only the counter's reprint (补打, journalled under its own key) prints it again.
    """

    def claim(self, msgid: str, at: str) -> bool:
        """Mark msgid as printing; False when any job took it before (printing, printed or failed)."""
        with self._db() as db:
            changed = db.execute(
                "INSERT INTO printed_receipts (msgid, state, at, detail) VALUES (?, 'printing', ?, '')"
                " ON CONFLICT (msgid) DO NOTHING",
                (msgid, at),
            ).rowcount
        return changed == 1

    def skip(self, msgid: str, at: str, detail: str) -> None:
        """Note a receipt that is not printed (no printer fitted), so a printer fitted later does not
        print the backlog; kept apart from printed/failed, reprintable like any receipt."""
        with self._db() as db:
            db.execute(
                "INSERT INTO printed_receipts (msgid, state, at, detail) VALUES (?, 'no_printer', ?, ?)"
                " ON CONFLICT (msgid) DO NOTHING",
                (msgid, at, detail),
            )

    def finish(self, msgid: str, state: str, at: str, detail: str = "") -> None:
        """Record how the job ended: printed or failed."""
        with self._db() as db:
            db.execute(
                "UPDATE printed_receipts SET state = ?, at = ?, detail = ? WHERE msgid = ?",
                (state, at, detail, msgid),
            )

    def state(self, msgid: str) -> str | None:
        """printing, printed, failed, or None when never tried."""
        with self._db() as db:
            row = db.execute("SELECT state FROM printed_receipts WHERE msgid = ?", (msgid,)).fetchone()
        return str(row[0]) if row else None

    def summary(self) -> dict[str, Any]:
        """Counts by state and the latest job, for the technician page."""
        with self._db() as db:
            by_state = db.execute("SELECT state, COUNT(*) FROM printed_receipts GROUP BY state").fetchall()
            counts = dict(by_state)
            last = db.execute(
                "SELECT msgid, state, at, detail FROM printed_receipts ORDER BY at DESC, rowid DESC"
            ).fetchone()
        return {
            "printed": counts.get("printed", 0),
            "failed": counts.get("failed", 0),
            "last": dict(zip(("msgid", "state", "at", "detail"), last, strict=True)) if last else None,
        }
