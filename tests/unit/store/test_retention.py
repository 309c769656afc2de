"""Retention: old attempts and finished session journals go; open sessions, the ledger and audit stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlite_utils

from terminal.clock import CST
from terminal.store import audit
from terminal.store.attempts import AttemptJournal
from terminal.store.db import open_db
from terminal.store.retention import purge_before
from terminal.store.sessions import SessionJournal

NOW = datetime(2025, 9, 1, 9, 0, tzinfo=CST)
CUTOFF = NOW - timedelta(days=90)


def _session(journal: SessionJournal, session_id: str, state: str, at: datetime) -> None:
    row = {
        "session_id": session_id, "state": state, "started_at": at.isoformat(), "updated_at": at.isoformat(),
        "face_failures": 0, "credential_attempts": 0, "verify_claim": None, "psn_no": None, "method": None,
        "bill": None, "msgid": None,
    }  # fmt: skip
    event = {"at": at.isoformat(), "event": "e", "from_state": None, "to_state": state, "detail": "{}"}
    journal.save(row, event)


def _count(db: sqlite_utils.Database, table: str) -> int:
    return int(next(iter(db.query(f"SELECT COUNT(*) AS n FROM {table}")))["n"])


def test_purge_deletes_only_what_is_older_than_the_cutoff_and_never_an_open_session(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    attempts, sessions = AttemptJournal(db), SessionJournal(db)
    attempts.begin("OLD", "face", CUTOFF - timedelta(seconds=1))
    attempts.failed("OLD", "credential", CUTOFF - timedelta(days=30), "unknown QR token")
    attempts.begin("NEW", "face", CUTOFF + timedelta(seconds=1))
    # The same instant as the cutoff written in UTC: compared as an instant, it is not older.
    attempts.begin("UTC", "face", CUTOFF.astimezone(UTC))
    _session(sessions, "OLD", "idle", CUTOFF - timedelta(days=1))
    _session(sessions, "STUCK", "confirming", CUTOFF - timedelta(days=200))  # open: resumed, never purged
    _session(sessions, "NEW", "idle", NOW - timedelta(days=1))
    audit.append(db, CUTOFF - timedelta(days=100), "tech", "enroll", "P1", {})
    db.execute(
        "INSERT INTO settlements (msgid, chrg_bchno, psn_no, med_type, identified_by, setl_time,"
        " medfee_sumamt, fund_pay_sumamt, psn_part_amt, result) VALUES"
        " ('M1', 'B1', 'P1', '11', 'face', ?, '1.00', '0.50', '0.50', '{}')",
        [(CUTOFF - timedelta(days=100)).isoformat()],
    )

    purged = purge_before(db, CUTOFF, NOW, "retention")

    assert (purged.attempts, purged.sessions, purged.events) == (2, 1, 1)
    assert sorted(r["session_id"] for r in db.query("SELECT session_id FROM identity_attempts")) == [
        "NEW", "UTC",
    ]  # fmt: skip
    assert sorted(r["session_id"] for r in db.query("SELECT session_id FROM checkout_sessions")) == [
        "NEW", "STUCK",
    ]  # fmt: skip
    assert sessions.events("STUCK") and sessions.events("NEW") and not sessions.events("OLD")
    assert sessions.unfinished() is not None
    assert _count(db, "settlements") == 1
    last = next(iter(db.query("SELECT actor, action, detail FROM audit ORDER BY seq DESC LIMIT 1")))
    assert (last["actor"], last["action"]) == ("retention", "retention-purge")
    assert '"attempts": 2' in last["detail"]
    assert _count(db, "audit") == 2, "the old audit row stays; the purge adds its own"


def test_nothing_to_purge_writes_no_audit_row(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    AttemptJournal(db).begin("NEW", "face", NOW)
    assert purge_before(db, CUTOFF, NOW, "retention").total() == 0
    assert _count(db, "audit") == 0
