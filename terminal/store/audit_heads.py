"""The audit chain heads this terminal reported upstream, and the upstream's verdict on each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlite_utils

from terminal.domain import AuditHead
from terminal.store import audit
from terminal.store.db import immediate


@dataclass(frozen=True)
class HeadReport:
    """One report: the head sent, when, and whether the upstream accepted it (its reason if not)."""

    seq: int
    mac: str
    reported_at: str
    accepted: bool
    reason: str

    def describe(self) -> str:
        """The report in one line (readiness, doctor)."""
        if self.accepted:
            return f"seq {self.seq} accepted upstream at {self.reported_at}"
        return f"seq {self.seq} REFUSED upstream at {self.reported_at}: {self.reason}"


class AuditHeadStore:
    """Reads the chain head and keeps the reports (the sync's side of the upstream's comparison)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def head(self) -> AuditHead:
        """The chain head now."""
        return audit.head(self._db)

    def at(self, seq: int) -> AuditHead | None:
        """The head as it stood at seq (that record's link MAC), None when no such record is held."""
        mac = audit.mac_at(self._db, seq)
        return None if mac is None else AuditHead(seq, mac)

    def last_accepted(self) -> AuditHead | None:
        """The last head the upstream accepted, None before the first."""
        rows = list(
            self._db.query(
                "SELECT seq, mac FROM audit_head_reports WHERE outcome = 'accepted' ORDER BY id DESC LIMIT 1"
            )
        )
        return AuditHead(int(rows[0]["seq"]), str(rows[0]["mac"])) if rows else None

    def last_report(self) -> HeadReport | None:
        """The latest report, accepted or not."""
        rows = list(self._db.query("SELECT * FROM audit_head_reports ORDER BY id DESC LIMIT 1"))
        if not rows:
            return None
        row = rows[0]
        return HeadReport(
            int(row["seq"]),
            str(row["mac"]),
            str(row["reported_at"]),
            row["outcome"] == "accepted",
            str(row["reason"]),
        )

    def note(self, head: AuditHead, at: datetime, accepted: bool, reason: str = "") -> None:
        """Keep one report; a refusal is audited as well (the terminal's own record of being flagged)."""
        with immediate(self._db):
            self._db.execute(
                "INSERT INTO audit_head_reports (seq, mac, reported_at, outcome, reason)"
                " VALUES (?, ?, ?, ?, ?)",
                [head.seq, head.mac, at.isoformat(), "accepted" if accepted else "refused", reason[:500]],
            )
            if not accepted:
                audit.append(
                    self._db, at, "uplink", "audit-head-refused", f"seq {head.seq}", {"reason": reason[:500]}
                )
