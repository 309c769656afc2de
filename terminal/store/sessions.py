"""The checkout session journal: the session row and its transitions, so a restart resumes the session."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlite_utils

# Columns of a session row; `bill` travels as a mapping (national JSON shape) or None.
SESSION_COLUMNS = (
    "session_id",
    "state",
    "started_at",
    "updated_at",
    "face_failures",
    "credential_attempts",
    "verify_claim",
    "psn_no",
    "method",
)
SESSION_ROW = (*SESSION_COLUMNS, "bill", "msgid")
EVENT_ROW = ("at", "event", "from_state", "to_state", "detail")


class SessionJournal:
    """The session journal over SQLite: plain rows in and out."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def save(self, session: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        """Upsert the session row and append its transition, in one transaction."""
        bill = session["bill"]
        with self._db.atomic():
            self._db.execute(
                "INSERT INTO checkout_sessions (session_id, state, started_at, updated_at, face_failures,"
                " credential_attempts, verify_claim, psn_no, method, bill, msgid)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(session_id) DO UPDATE SET state = excluded.state,"
                " updated_at = excluded.updated_at, face_failures = excluded.face_failures,"
                " credential_attempts = excluded.credential_attempts, verify_claim = excluded.verify_claim,"
                " psn_no = excluded.psn_no, method = excluded.method, bill = excluded.bill,"
                " msgid = excluded.msgid",
                [
                    *(session[name] for name in SESSION_COLUMNS),
                    json.dumps(bill, ensure_ascii=False) if bill is not None else None,
                    session["msgid"],
                ],
            )
            self._db.execute(
                "INSERT INTO checkout_session_events (session_id, at, event, from_state, to_state, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [session["session_id"], *(event[name] for name in EVENT_ROW)],
            )

    def unfinished(self) -> dict[str, Any] | None:
        """The most recent session not back at idle, if any (its `bill` parsed back to a mapping)."""
        rows = list(
            self._db.query(
                "SELECT * FROM checkout_sessions WHERE state != 'idle' ORDER BY updated_at DESC, rowid DESC"
                " LIMIT 1"
            )
        )
        if not rows:
            return None
        row = {name: rows[0][name] for name in SESSION_ROW}
        row["bill"] = json.loads(row["bill"]) if row["bill"] else None
        return row

    def events(self, session_id: str) -> list[dict[str, Any]]:
        """Every transition of one session, oldest first."""
        return [
            dict(row)
            for row in self._db.query(
                "SELECT at, event, from_state, to_state, detail FROM checkout_session_events"
                " WHERE session_id = ? ORDER BY seq",
                [session_id],
            )
        ]
