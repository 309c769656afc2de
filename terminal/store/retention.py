"""Retention: identification attempts and finished session journals purged after `[storage] retention_days`.

Only these: they are needed for a while (attempt limits, resuming a session, explaining a disputed
checkout) and then are personal data kept for nothing. Settlements, accumulators, the audit chain,
the outbox and the upstream's results are the ledger and are never purged here. A session still open
(state other than idle) is kept whatever its age, with its events: the journal resumes it.
Times are compared as instants (julianday), so rows written under another UTC offset compare right.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlite_utils

from terminal.store import audit
from terminal.store.db import immediate


@dataclass(frozen=True)
class Purged:
    """How many rows one purge deleted, per table."""

    attempts: int
    sessions: int
    events: int

    def total(self) -> int:
        """All rows deleted."""
        return self.attempts + self.sessions + self.events


def purge_before(db: sqlite_utils.Database, cutoff: datetime, now: datetime, actor: str) -> Purged:
    """Delete attempts begun, finished sessions updated, and their events, before cutoff; audited if any."""
    at = cutoff.isoformat()
    with immediate(db):
        attempts = db.execute(
            "DELETE FROM identity_attempts WHERE julianday(began_at) < julianday(?)", [at]
        ).rowcount
        sessions = db.execute(
            "DELETE FROM checkout_sessions WHERE state = 'idle' AND julianday(updated_at) < julianday(?)",
            [at],
        ).rowcount
        events = db.execute(
            "DELETE FROM checkout_session_events WHERE julianday(at) < julianday(?)"
            " AND session_id NOT IN (SELECT session_id FROM checkout_sessions WHERE state != 'idle')",
            [at],
        ).rowcount
        purged = Purged(int(attempts), int(sessions), int(events))
        if purged.total():
            detail = {"attempts": purged.attempts, "sessions": purged.sessions, "events": purged.events}
            audit.append(db, now, actor, "retention-purge", f"before {at}", detail)
    return purged
