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
from terminal.store.payment_refusals import not_settled
from terminal.store.reconcile import MONEY_FIELDS, differences, local_setlinfo, local_totals
from terminal.store.reversals import compensate_voided

log = logging.getLogger(__name__)

# counters rows, epoch seconds: the offline policy measures staleness and silence from them.
LAST_SYNC = "uplink_last_sync"  # the last complete drain
LAST_CONTACT = "uplink_last_contact"  # the last answer of any kind from the upstream
DOWN_SINCE = "uplink_down_since"  # the first failed delivery or probe since the last answer; absent when up

# Pending entries the drain may send now: not those of a person with an earlier entry parked, so one
# person's settlements reach the upstream in the order they were made (their accumulators depend on it).
DELIVERABLE = (
    "o.state = 'pending' AND NOT (o.psn_no <> '' AND EXISTS (SELECT 1 FROM outbox p"
    " WHERE p.state = 'parked' AND p.psn_no = o.psn_no AND p.seq < o.seq))"
)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


class OutboxStore:
    """The Outbox and UplinkState ports over SQLite; each decision commits with its audit record."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def pending(self, limit: int) -> list[OutboxEntry]:
        """Entries to deliver now, oldest first (a parked entry holds back its person's later ones)."""
        rows = self._db.query(
            "SELECT o.seq, o.msgid, o.infno, o.envelope, o.attempts, o.outcome_unknown FROM outbox o"
            f" WHERE {DELIVERABLE} ORDER BY o.seq LIMIT ?",
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

    def park(self, entry: OutboxEntry, reason: str, at: datetime) -> None:
        """Set an entry no retry can deliver aside for a technician, with its error; the drain goes on."""
        with immediate(self._db):
            self._db.execute(
                "UPDATE outbox SET state = 'parked', parked_at = ?, attempts = attempts + 1, last_error = ?"
                " WHERE seq = ? AND state = 'pending'",
                [at.isoformat(), reason[:500], entry.seq],
            )
            audit.append(
                self._db, at, "uplink", "parked", entry.msgid, {"infno": entry.infno, "reason": reason}
            )

    def note_failure(self, at: datetime, error: str) -> int:
        """A delivery or probe failed: the terminal is offline from now until the upstream answers again.

        Every settlement the upstream has not confirmed yet is marked offline in the same transaction
        (its receipt then says the amounts are an estimate); returns how many were newly marked.
        """
        with immediate(self._db):
            self._db.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO NOTHING",
                [DOWN_SINCE, int(at.timestamp())],
            )
            unconfirmed = [
                str(r["msgid"])
                for r in self._db.query(
                    "SELECT s.msgid FROM settlements s JOIN outbox o ON o.msgid = s.msgid"
                    " WHERE s.offline = 0 AND o.state IN ('pending', 'parked') ORDER BY o.seq"
                )
            ]
            if unconfirmed:
                self._db.execute(
                    "UPDATE settlements SET offline = 1 WHERE offline = 0 AND msgid IN"
                    " (SELECT msgid FROM outbox WHERE state IN ('pending', 'parked'))"
                )
                audit.append(
                    self._db, at, "uplink", "offline", "settlements",
                    {"error": error[:200], "marked_offline": unconfirmed},
                )  # fmt: skip
        return len(unconfirmed)

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
            # Voided by a failed payment while this delivery was in flight: the centre settled it after
            # all, so its 2208 is queued now (the totals were restored when it was voided).
            compensation = compensate_voided(self._db, entry.msgid, at)
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
                {"infno": entry.infno, "inf_refmsgid": inf_refmsgid, "differences": len(diffs)}
                | ({"reversal": compensation} if compensation else {}),
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
            restored = take_out_of_accumulators(self._db, entry.msgid, revert, at)
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
            # Paid (offline, the estimate) for a settlement the centre will not have: the cash goes back.
            not_settled(self._db, entry.msgid, reason, at, "uplink")
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
        """Deliverable queue size and age, last answer, last complete sync, down since, parked count."""
        queued = self._count(f"SELECT COUNT(*) AS n FROM outbox o WHERE {DELIVERABLE}")
        first = f"SELECT o.created_at FROM outbox o WHERE {DELIVERABLE} ORDER BY o.seq LIMIT 1"
        oldest = [_parse_time(str(r["created_at"])) for r in self._db.query(first)]
        times = {
            str(r["name"]): datetime.fromtimestamp(int(r["value"]), tz=UTC)
            for r in self._db.query(
                "SELECT name, value FROM counters WHERE name IN (?, ?, ?)",
                [LAST_CONTACT, LAST_SYNC, DOWN_SINCE],
            )
        }
        return UplinkFacts(
            queued=queued,
            oldest_queued=oldest[0] if oldest else None,
            last_contact=times.get(LAST_CONTACT),
            last_sync=times.get(LAST_SYNC),
            down_since=times.get(DOWN_SINCE),
            parked=self._count("SELECT COUNT(*) AS n FROM outbox WHERE state = 'parked'"),
        )

    def _count(self, sql: str) -> int:
        return int(next(iter(self._db.query(sql)))["n"])

    def offline_facts(self, tz: tzinfo) -> tuple[int, datetime | None]:
        """(entries queued for delivery, time of the last complete sync), for the offline rule."""
        queued = self._count(f"SELECT COUNT(*) AS n FROM outbox o WHERE {DELIVERABLE}")
        rows = list(self._db.query("SELECT value FROM counters WHERE name = ?", [LAST_SYNC]))
        at = datetime.fromtimestamp(int(rows[0]["value"]), tz=tz) if rows else None
        return queued, at

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

    def _set_times(self, at: datetime, *names: str) -> None:
        if LAST_CONTACT in names:
            # The upstream answered: the terminal is online again (until the next failure).
            self._db.execute("DELETE FROM counters WHERE name = ?", [DOWN_SINCE])
        for name in names:
            self._db.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?)"
                " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                [name, int(at.timestamp())],
            )


def take_out_of_accumulators(db: sqlite_utils.Database, msgid: str, revert: Revert, at: datetime) -> bool:
    """Inside the caller's transaction: take a settlement back out of its person's accumulators.

    For an entry the upstream never settled (refused, voided); False when `msgid` is not a settlement.
    """
    rows = list(
        db.query(
            "SELECT psn_no, setl_time, year, result, restored_at FROM settlements WHERE msgid = ?", [msgid]
        )
    )
    if not rows:
        return False
    row = rows[0]
    if row["restored_at"] is not None:
        # Already taken out (a payment saga's reversal, then the upstream's refusal of the same 2207).
        return True
    # Rows written before migration 0006 have no year: checkout priced them against the accumulators
    # of the settlement date's year.
    year = int(row["year"]) if row["year"] is not None else int(str(row["setl_time"])[:4])
    psn_no = str(row["psn_no"])
    held = list(db.query("SELECT state FROM accumulators WHERE psn_no = ? AND year = ?", [psn_no, year]))
    current = dict(json.loads(held[0]["state"])) if held else {}
    db.execute(
        "INSERT INTO accumulators (psn_no, year, state, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(psn_no, year) DO UPDATE SET"
        " state = excluded.state, updated_at = excluded.updated_at",
        [psn_no, year, _dumps(revert(current, json.loads(row["result"]))), at.isoformat()],
    )
    db.execute("UPDATE settlements SET restored_at = ? WHERE msgid = ?", [at.isoformat(), msgid])
    return True


def _parse_time(text: str) -> datetime | None:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        log.warning("outbox entry with an unreadable or zoneless created_at %r", text)
        return None
    return at


__all__ = [
    "DELIVERABLE",
    "DOWN_SINCE",
    "LAST_CONTACT",
    "LAST_SYNC",
    "MONEY_FIELDS",
    "OutboxEntry",
    "OutboxStore",
]
