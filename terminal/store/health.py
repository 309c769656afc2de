"""What the service's health and metrics read from the database, and its write probe."""

from __future__ import annotations

import sqlite3
from datetime import datetime

import sqlite_utils

from terminal.errors import StoreError
from terminal.store.db import immediate

WRITE_PROBE = "health_write_probe"  # counters row the readiness probe rewrites


def write_probe(db: sqlite_utils.Database, at: datetime) -> None:
    """Commit one small write (a counters row): StoreError when the database does not take writes."""
    try:
        with immediate(db):
            db.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?)"
                " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                [WRITE_PROBE, int(at.timestamp())],
            )
    except sqlite3.Error as exc:
        raise StoreError(f"the database does not take writes: {exc}") from exc


def settlement_count(db: sqlite_utils.Database) -> int:
    """Settlements the ledger holds."""
    return int(next(iter(db.query("SELECT COUNT(*) AS n FROM settlements")))["n"])


def attempt_counts(db: sqlite_utils.Database) -> dict[tuple[str, str], int]:
    """Identification attempts per (kind, outcome): face/credential × open/pass/fail."""
    rows = db.query("SELECT kind, outcome, COUNT(*) AS n FROM identity_attempts GROUP BY kind, outcome")
    return {(str(r["kind"]), str(r["outcome"])): int(r["n"]) for r in rows}


def face_failure_details(db: sqlite_utils.Database) -> dict[str, int]:
    """Failed face attempts per recorded detail (the reason the session gave)."""
    rows = db.query(
        "SELECT detail, COUNT(*) AS n FROM identity_attempts"
        " WHERE kind = 'face' AND outcome = 'fail' GROUP BY detail"
    )
    return {str(r["detail"]): int(r["n"]) for r in rows}


def pending_attempts(db: sqlite_utils.Database) -> int:
    """Delivery attempts made so far on entries still pending (each one a failed or unknown delivery)."""
    row = next(iter(db.query("SELECT COALESCE(SUM(attempts), 0) AS n FROM outbox WHERE state = 'pending'")))
    return int(row["n"])
