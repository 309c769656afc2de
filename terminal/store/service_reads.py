"""What the service's readiness and metrics read from the database (counts at scrape time)."""

from __future__ import annotations

import sqlite_utils


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
