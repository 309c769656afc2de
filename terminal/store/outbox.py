"""The outbox as the sync worker sees it: pending entries in order, attempts, delivery, refusal."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

import sqlite_utils

from terminal.domain import OutboxEntry, UplinkFacts
from terminal.ports import Revert
from terminal.store import audit
from terminal.store.db import immediate
from terminal.store.guard import STORAGE_FAILURES
from terminal.store.reconcile import MONEY_FIELDS, differences, local_setlinfo, local_totals

log = logging.getLogger(__name__)

# counters rows, epoch seconds: the offline policy measures staleness and silence from them.
LAST_SYNC = "uplink_last_sync"  # the last complete drain
LAST_CONTACT = "uplink_last_contact"  # the last answer of any kind from the upstream


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


class OutboxStore:
    """The Outbox and UplinkState ports over SQLite; each decision commits with its audit record."""

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
        with immediate(self._db):
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
        with immediate(self._db):
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
            self._set_times(at, LAST_CONTACT)
        return diffs

    def local_setlinfo(self, msgid: str) -> Mapping[str, Any] | None:
        """The terminal's own estimate for a settlement, None when the msgid is not a settlement."""
        return local_setlinfo(self._db, msgid)

    def refuse(self, entry: OutboxEntry, reason: str, at: datetime, revert: Revert) -> bool:
        """Set a refused entry aside and take its settlement out of the accumulators, in one transaction.

        The upstream never settled it, so the patient's year-to-date totals (deductible used, pooled
        fund paid, critical illness, assistance …) must not keep it either; True when it was a settlement.
        """
        try:
            return self._refuse(entry, reason, at, revert)
        except STORAGE_FAILURES as exc:
            # The kind store/guard.py gave it (busy, full …), saying what was not recorded.
            raise type(exc)(
                f"refusal of {entry.msgid} was not recorded, the next sync tries again: {exc}"
            ) from exc

    def _refuse(self, entry: OutboxEntry, reason: str, at: datetime, revert: Revert) -> bool:
        with immediate(self._db):
            rows = list(
                self._db.query(
                    "SELECT psn_no, setl_time, year, result FROM settlements WHERE msgid = ?", [entry.msgid]
                )
            )
            restored = bool(rows)
            if rows:
                row = rows[0]
                # Rows written before migration 0006 have no year: checkout priced them against the
                # accumulators of the settlement date's year.
                year = int(row["year"]) if row["year"] is not None else int(str(row["setl_time"])[:4])
                self._restore_accumulators(str(row["psn_no"]), year, json.loads(row["result"]), revert, at)
            self._db.execute(
                "UPDATE outbox SET state = 'refused', attempts = attempts + 1, last_error = ? WHERE seq = ?",
                [reason[:500], entry.seq],
            )
            audit.append(
                self._db,
                at,
                "uplink",
                "refused",
                entry.msgid,
                {"reason": reason, "accumulators_restored": restored},
            )
            self._set_times(at, LAST_CONTACT)
        return restored

    def note_contact(self, at: datetime, synced: bool) -> None:
        """The upstream answered at `at`; `synced` when the whole outbox has just been delivered."""
        with immediate(self._db):
            self._set_times(at, LAST_CONTACT, *([LAST_SYNC] if synced else []))

    def local_totals(self, day: str) -> dict[str, str]:
        """3201 input totals for one day (yyyy-mm-dd) from the local estimates."""
        return local_totals(self._db, day)

    def keep_totals(
        self, day: str, stmt_rslt: str, local: Mapping[str, Any], upstream: Mapping[str, Any], at: datetime
    ) -> None:
        """Store one day's 3201 verdict beside both sides' totals."""
        with immediate(self._db):
            self._db.execute(
                "INSERT OR REPLACE INTO upstream_totals (day, stmt_rslt, local, upstream, checked_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [day, stmt_rslt, _dumps(local), _dumps(upstream), at.isoformat()],
            )

    def uplink_facts(self) -> UplinkFacts:
        """Queue size and age, last answer from the upstream, last complete sync."""
        queued = next(iter(self._db.query("SELECT COUNT(*) AS n FROM outbox WHERE state = 'pending'")))["n"]
        first = "SELECT created_at FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT 1"
        oldest = [_parse_time(str(r["created_at"])) for r in self._db.query(first)]
        times = {
            str(r["name"]): datetime.fromtimestamp(int(r["value"]), tz=UTC)
            for r in self._db.query(
                "SELECT name, value FROM counters WHERE name IN (?, ?)", [LAST_CONTACT, LAST_SYNC]
            )
        }
        return UplinkFacts(
            queued=int(queued),
            oldest_queued=oldest[0] if oldest else None,
            last_contact=times.get(LAST_CONTACT),
            last_sync=times.get(LAST_SYNC),
        )

    def offline_facts(self, tz: tzinfo) -> tuple[int, datetime | None]:
        """(entries queued, time of the last complete sync), for the offline rule."""
        queued = next(iter(self._db.query("SELECT COUNT(*) AS n FROM outbox WHERE state = 'pending'")))["n"]
        rows = list(self._db.query("SELECT value FROM counters WHERE name = ?", [LAST_SYNC]))
        at = datetime.fromtimestamp(int(rows[0]["value"]), tz=tz) if rows else None
        return int(queued), at

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

    def _restore_accumulators(
        self, psn_no: str, year: int, result: Mapping[str, Any], revert: Revert, at: datetime
    ) -> None:
        rows = list(
            self._db.query("SELECT state FROM accumulators WHERE psn_no = ? AND year = ?", [psn_no, year])
        )
        current = dict(json.loads(rows[0]["state"])) if rows else {}
        self._db.execute(
            "INSERT INTO accumulators (psn_no, year, state, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(psn_no, year) DO UPDATE SET"
            " state = excluded.state, updated_at = excluded.updated_at",
            [psn_no, year, _dumps(revert(current, result)), at.isoformat()],
        )

    def _set_times(self, at: datetime, *names: str) -> None:
        for name in names:
            self._db.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?)"
                " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                [name, int(at.timestamp())],
            )


def _parse_time(text: str) -> datetime | None:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        log.warning("outbox entry with an unreadable or zoneless created_at %r", text)
        return None
    return at


__all__ = ["LAST_CONTACT", "LAST_SYNC", "MONEY_FIELDS", "OutboxEntry", "OutboxStore"]
