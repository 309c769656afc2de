"""Parked outbox entries as technicians see and settle them: list, re-queue, void — each one audited."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlite_utils

from terminal.errors import OutboxEntryError, StoreError
from terminal.ports import Revert
from terminal.store import audit
from terminal.store.db import immediate
from terminal.store.outbox import take_out_of_accumulators
from terminal.store.payment_refusals import not_settled


class ParkedEntries:
    """The parked part of the outbox: what is parked and why, and the technician's two ways out."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def entries(self, limit: int = 200) -> list[dict[str, Any]]:
        """Parked entries, oldest first, each with how many later entries of its person it holds back."""
        rows = self._db.query(
            "SELECT o.seq, o.msgid, o.infno, o.psn_no, o.created_at, o.parked_at, o.attempts, o.last_error,"
            " (SELECT COUNT(*) FROM outbox l WHERE l.state = 'pending' AND o.psn_no <> ''"
            "  AND l.psn_no = o.psn_no AND l.seq > o.seq) AS holding"
            " FROM outbox o WHERE o.state = 'parked' ORDER BY o.seq LIMIT ?",
            [limit],
        )
        return [dict(row) for row in rows]

    def envelope(self, msgid: str) -> dict[str, Any]:
        """The stored envelope of one parked entry (OutboxEntryError when msgid is not parked)."""
        row = self._parked(msgid)
        return dict(json.loads(row["envelope"]))

    def requeue(self, msgid: str, operator: str, at: datetime) -> None:
        """Put a parked entry back in line (same msgid: upstream idempotency keeps a resend harmless)."""
        with _writing(self._db, msgid):
            row = self._parked(msgid)
            self._db.execute(
                "UPDATE outbox SET state = 'pending', parked_at = NULL WHERE seq = ?", [row["seq"]]
            )
            audit.append(self._db, at, f"technician:{operator}", "requeue", msgid, {"was": row["last_error"]})

    def void(self, msgid: str, reason: str, operator: str, at: datetime, revert: Revert) -> bool:
        """Never send a parked entry: its settlement leaves the accumulators, as a refusal's does.

        True when it was a settlement (its accumulators were restored); nothing is written on any error.
        """
        if not reason.strip():
            raise OutboxEntryError("voiding an entry needs a reason (--reason)")
        with _writing(self._db, msgid):
            row = self._parked(msgid)
            restored = take_out_of_accumulators(self._db, msgid, revert, at)
            self._db.execute(
                "UPDATE outbox SET state = 'voided', last_error = ? WHERE seq = ?",
                [f"voided: {reason}"[:500], row["seq"]],
            )
            audit.append(
                self._db, at, f"technician:{operator}", "void", msgid,
                {"reason": reason, "was": row["last_error"], "accumulators_restored": restored},
            )  # fmt: skip
            # Never sent, so never settled: cash the patient paid for it goes back (pipeline/payment.py).
            not_settled(
                self._db, msgid, f"voided by technician {operator}: {reason}", at, f"technician:{operator}"
            )
        return restored

    def _parked(self, msgid: str) -> Any:
        rows = list(
            self._db.query("SELECT seq, state, envelope, last_error FROM outbox WHERE msgid = ?", [msgid])
        )
        if not rows:
            raise OutboxEntryError(f"no outbox entry with msgid {msgid}")
        if rows[0]["state"] != "parked":
            raise OutboxEntryError(f"outbox entry {msgid} is {rows[0]['state']}, not parked")
        return rows[0]


@contextmanager
def _writing(db: sqlite_utils.Database, msgid: str) -> Iterator[None]:
    """One IMMEDIATE transaction; a SQLite failure becomes a StoreError saying nothing was changed."""
    try:
        with immediate(db):
            yield
    except sqlite3.OperationalError as exc:
        raise StoreError(f"outbox entry {msgid} was not changed: {exc}") from exc
