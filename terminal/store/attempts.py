"""Identification attempts counted terminal-wide, and the pause they can put on face recognition."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import sqlite_utils

Kind = Literal["face", "credential"]
Outcome = Literal["open", "pass", "fail"]


class AttemptJournal:
    """Attempt rows and the one pause row over SQLite; the pipeline's attempt limits decide with them."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def begin(self, session_id: str, kind: Kind, at: datetime) -> int:
        """An attempt that has started and, until it ends, counts as failed; its id."""
        with self._db.atomic():
            cursor = self._db.execute(
                "INSERT INTO identity_attempts (session_id, kind, began_at, outcome)"
                " VALUES (?, ?, ?, 'open')",
                [session_id, kind, at.isoformat()],
            )
        return int(cursor.lastrowid or 0)

    def end(self, attempt_id: int, outcome: Outcome, detail: str) -> None:
        """Close an open attempt as passed or failed (an attempt already closed is left as it is)."""
        with self._db.atomic():
            self._db.execute(
                "UPDATE identity_attempts SET outcome = ?, detail = ? WHERE id = ? AND outcome = 'open'",
                [outcome, detail, attempt_id],
            )

    def failed(self, session_id: str, kind: Kind, at: datetime, detail: str) -> None:
        """A failure that had no running phase (a credential refused at once)."""
        with self._db.atomic():
            self._db.execute(
                "INSERT INTO identity_attempts (session_id, kind, began_at, outcome, detail)"
                " VALUES (?, ?, ?, 'fail', ?)",
                [session_id, kind, at.isoformat(), detail],
            )

    def failures_since(self, since: datetime) -> int:
        """Attempts begun since a moment that did not pass (open ones included), of any kind."""
        rows = list(
            self._db.query(
                "SELECT COUNT(*) AS n FROM identity_attempts WHERE outcome != 'pass' AND began_at >= ?",
                [since.isoformat()],
            )
        )
        return int(rows[0]["n"]) if rows else 0

    def recent(self, limit: int) -> list[dict[str, object]]:
        """The newest attempts, newest first (for the technician page)."""
        return [
            dict(row)
            for row in self._db.query(
                "SELECT session_id, kind, began_at, outcome, detail FROM identity_attempts"
                " ORDER BY id DESC LIMIT ?",
                [limit],
            )
        ]

    def pause(self) -> tuple[datetime | None, datetime | None]:
        """Until when face is paused, and when a technician last reset the window (None, None at first)."""
        rows = list(self._db.query("SELECT paused_until, reset_at FROM identity_pause WHERE id = 1"))
        if not rows:
            return None, None
        until, reset = rows[0]["paused_until"], rows[0]["reset_at"]
        return (
            datetime.fromisoformat(until) if until else None,
            datetime.fromisoformat(reset) if reset else None,
        )

    def set_pause(self, until: datetime) -> None:
        """Pause face until a moment."""
        with self._db.atomic():
            self._db.execute(
                "INSERT INTO identity_pause (id, paused_until) VALUES (1, ?)"
                " ON CONFLICT(id) DO UPDATE SET paused_until = excluded.paused_until",
                [until.isoformat()],
            )

    def reset(self, at: datetime) -> None:
        """A technician lifts the pause: failures before this moment no longer count."""
        with self._db.atomic():
            self._db.execute(
                "INSERT INTO identity_pause (id, paused_until, reset_at) VALUES (1, NULL, ?)"
                " ON CONFLICT(id) DO UPDATE SET paused_until = NULL, reset_at = excluded.reset_at",
                [at.isoformat()],
            )
