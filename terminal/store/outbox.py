"""The outbox as the sync worker sees it: pending entries in order, attempts, delivery."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from terminal.store import audit
from terminal.store.reconcile import MONEY_FIELDS, differences


@dataclass(frozen=True)
class OutboxEntry:
    """One queued message."""

    seq: int
    msgid: str
    infno: str
    envelope: dict[str, Any]
    attempts: int
    outcome_unknown: bool


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


class OutboxStore:
    """Reads and advances the outbox; delivery, the upstream result and its reconciliation commit together."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def pending(self, limit: int) -> list[OutboxEntry]:
        """Undelivered entries, oldest first."""
        rows = self._db.query(
            "SELECT seq, msgid, infno, envelope, attempts, outcome_unknown FROM outbox"
            " WHERE state = 'pending' ORDER BY seq LIMIT ?",
            [limit],
        )
        return [
            OutboxEntry(
                seq=int(r["seq"]),
                msgid=str(r["msgid"]),
                infno=str(r["infno"]),
                envelope=json.loads(r["envelope"]),
                attempts=int(r["attempts"]),
                outcome_unknown=bool(r["outcome_unknown"]),
            )
            for r in rows
        ]

    def counts(self) -> dict[str, int]:
        """Entries per state."""
        rows = self._db.query("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state")
        return {str(r["state"]): int(r["n"]) for r in rows}

    def note_attempt(self, seq: int, error: str, outcome_unknown: bool) -> None:
        """Count a failed attempt; remember when its outcome is unknown so the next one asks first."""
        with self._db.atomic():
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?,"
                " outcome_unknown = MAX(outcome_unknown, ?) WHERE seq = ?",
                [error[:500], int(outcome_unknown), seq],
            )

    def deliver(
        self,
        entry: OutboxEntry,
        inf_refmsgid: str,
        output: Mapping[str, Any],
        local: Mapping[str, Any] | None,
        at: datetime,
    ) -> list[tuple[str, str, str]]:
        """Mark delivered, keep the authoritative output and every difference from the local estimate."""
        diffs = differences(local, output.get("setlinfo")) if local is not None else []
        with self._db.atomic():
            self._db.execute(
                "INSERT OR REPLACE INTO upstream_results (msgid, infno, inf_refmsgid, output, received_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [entry.msgid, entry.infno, inf_refmsgid, _dumps(output), at.isoformat()],
            )
            for name, mine, theirs in diffs:
                self._db.execute(
                    "INSERT INTO reconcile (msgid, field, local, upstream, recorded_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [entry.msgid, name, mine, theirs, at.isoformat()],
                )
            self._db.execute(
                "UPDATE outbox SET state = 'delivered', delivered_at = ?, attempts = attempts + 1,"
                " last_error = '' WHERE seq = ?",
                [at.isoformat(), entry.seq],
            )
            audit.append(
                self._db,
                at,
                "uplink",
                "delivered",
                entry.msgid,
                {"infno": entry.infno, "inf_refmsgid": inf_refmsgid, "differences": len(diffs)},
            )
        return diffs

    def upstream_result(self, msgid: str) -> dict[str, Any] | None:
        """The authoritative output stored for a message, None before delivery."""
        rows = list(self._db.query("SELECT output FROM upstream_results WHERE msgid = ?", [msgid]))
        return dict(json.loads(rows[0]["output"])) if rows else None

    def prune_delivered(self, keep: int) -> int:
        """Drop delivered envelopes beyond the newest `keep` (results and audit stay); rows deleted."""
        # Why: during long outages the queue grows; once delivered, the envelope is redundant with
        # the settlement row and the upstream result, so disk use stays bounded by the pending count.
        with self._db.atomic():
            cursor = self._db.execute(
                "DELETE FROM outbox WHERE state = 'delivered' AND seq <="
                " (SELECT seq FROM outbox WHERE state = 'delivered' ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                [keep],
            )
        return int(cursor.rowcount)


__all__ = ["MONEY_FIELDS", "OutboxEntry", "OutboxStore"]
