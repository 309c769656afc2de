"""The receipt and HIS-notice journals in the terminal database, and the migration bringing old files in."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from terminal.errors import StoreError
from terminal.store import db as store_db
from terminal.store.db import MIGRATIONS, open_db
from terminal.store.legacy_journals import LEGACY_NOTICE_JOURNAL, LEGACY_PRINT_JOURNAL
from terminal.store.notices import NoticeJournal
from terminal.store.prints import PrintJournal

MIGRATION = "0008_receipt_and_notice_journals"
BODY = {
    "msgid": "H430302000012025060310000002",
    "setl_time": "2025-06-03T10:00:00+08:00",
    "medfee_sumamt": "430.00",
    "fund_pay_sumamt": "300.00",
    "psn_part_amt": "130.00",
}


def _old_print_file(folder: Path, rows: list[tuple[str, str, str, str]]) -> None:
    """printed_receipts.sqlite exactly as terminal/service/devices.py wrote it before the move."""
    with closing(sqlite3.connect(folder / LEGACY_PRINT_JOURNAL)) as db, db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS prints ("
            " msgid TEXT PRIMARY KEY, state TEXT NOT NULL, at TEXT NOT NULL, detail TEXT NOT NULL)"
        )
        db.executemany("INSERT INTO prints (msgid, state, at, detail) VALUES (?, ?, ?, ?)", rows)


def _old_notice_file(folder: Path) -> None:
    """his_notices.sqlite exactly as terminal/service/his.py wrote it before the move."""
    with closing(sqlite3.connect(folder / LEGACY_NOTICE_JOURNAL)) as db, db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS notices ("
            " chrg_bchno TEXT PRIMARY KEY, state TEXT NOT NULL, msgid TEXT, body TEXT,"
            " attempts INTEGER NOT NULL DEFAULT 0, detail TEXT NOT NULL DEFAULT '', at TEXT NOT NULL)"
        )
        db.execute("INSERT INTO notices (chrg_bchno, state, at) VALUES ('B1', 'loaded', 't1')")
        db.execute(
            "INSERT INTO notices (chrg_bchno, state, msgid, body, attempts, detail, at)"
            " VALUES ('B2', 'pending', ?, ?, 3, 'HIS answered 503', 't2')",
            (BODY["msgid"], json.dumps(BODY, ensure_ascii=False)),
        )
        db.execute(
            "INSERT INTO notices (chrg_bchno, state, msgid, body, attempts, at)"
            " VALUES ('B3', 'sent', 'M3', '{}', 1, 't3')"
        )


def _before_the_move(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A terminal database as a version without migration 0008 left it."""
    names = [name for name, _ in MIGRATIONS]
    with monkeypatch.context() as patch:
        patch.setattr(store_db, "MIGRATIONS", MIGRATIONS[: names.index(MIGRATION)])
        open_db(folder).close()


def _applied(folder: Path) -> list[str]:
    db = open_db(folder)
    try:
        return [row["name"] for row in db.query("SELECT name FROM _migrations ORDER BY name")]
    finally:
        db.close()


def _applied_without_upgrade(folder: Path) -> list[str]:
    with closing(sqlite3.connect(folder / store_db.DB_NAME)) as db:
        return [str(row[0]) for row in db.execute("SELECT name FROM _migrations")]


def test_print_journal_claims_a_msgid_once_across_restarts(tmp_path: Path) -> None:
    journal = PrintJournal(tmp_path)
    assert journal.claim("M1", "2025-06-03T09:30:00+08:00")
    assert not journal.claim("M1", "2025-06-03T09:30:01+08:00"), "a job in flight is not started twice"
    journal.finish("M1", "printed", "2025-06-03T09:30:02+08:00")
    again = PrintJournal(tmp_path)
    assert not again.claim("M1", "2025-06-03T10:00:00+08:00")
    assert again.claim("M2", "2025-06-03T10:00:00+08:00")
    again.finish("M2", "failed", "2025-06-03T10:00:01+08:00", "refused")
    assert again.summary()["last"] == {
        "msgid": "M2",
        "state": "failed",
        "at": "2025-06-03T10:00:01+08:00",
        "detail": "refused",
    }
    # Regression: a failed job was claimed again, so a half-printed receipt could come out twice.
    assert not again.claim("M2", "2025-06-03T10:05:00+08:00"), "a failed job is printed only by a reprint"
    assert again.summary()["printed"] == 1
    assert not (tmp_path / LEGACY_PRINT_JOURNAL).exists(), "the journal lives in the terminal database"


def test_notice_journal_queues_only_loaded_bills_and_never_resends_a_sent_one(tmp_path: Path) -> None:
    journal = NoticeJournal(tmp_path)
    journal.loaded("B1", "t1")
    assert not journal.settled("RX-1", "M9", BODY, "t1"), "a basket never loaded is never notified"
    assert journal.settled("B1", BODY["msgid"], BODY, "t2")
    assert journal.pending() == [("B1", BODY)]
    journal.finish("B1", "sent", "t3")
    assert not journal.settled("B1", "M-OTHER", {**BODY, "msgid": "M-OTHER"}, "t4", listed=True)
    assert journal.settled("B2", BODY["msgid"], BODY, "t5", listed=True), "still listed: recorded now"
    assert journal.summary() == {"sent": 1, "pending": 1}
    row = journal.row("B1")
    assert row is not None and (row["msgid"], row["attempts"]) == (BODY["msgid"], 1)
    assert not (tmp_path / LEGACY_NOTICE_JOURNAL).exists(), "the journal lives in the terminal database"


def test_the_upgrade_imports_the_old_journal_files_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _before_the_move(tmp_path, monkeypatch)
    assert MIGRATION not in _applied_without_upgrade(tmp_path)
    _old_print_file(
        tmp_path, [("M1", "printed", "t1", ""), ("M2", "printing", "t2", ""), ("M3", "failed", "t3", "x")]
    )
    _old_notice_file(tmp_path)

    prints = PrintJournal(tmp_path)  # the first start of the new version
    assert MIGRATION in _applied(tmp_path)
    assert not prints.claim("M1", "t9"), "printed before the upgrade: not printed again"
    assert not prints.claim("M2", "t9"), "in flight when the old version stopped: not printed again"
    assert not prints.claim("M3", "t9"), "failed before the upgrade: only a reprint prints it"
    notices = NoticeJournal(tmp_path)
    assert notices.waiting("loaded") == ["B1"]
    assert notices.pending() == [("B2", BODY)]
    b2 = notices.row("B2")
    assert b2 is not None and (b2["attempts"], b2["detail"]) == (3, "HIS answered 503")
    assert notices.summary() == {"loaded": 1, "pending": 1, "sent": 1}

    # Applied once: rows the old file gains later (it is no longer written) are not imported again.
    _old_print_file(tmp_path, [("M4", "printed", "t4", "")])
    assert PrintJournal(tmp_path).claim("M4", "t9")
    assert (tmp_path / LEGACY_PRINT_JOURNAL).exists(), "the old file is left as it was"


def test_a_new_terminal_without_old_files_starts_with_empty_journals(tmp_path: Path) -> None:
    assert PrintJournal(tmp_path).summary() == {"printed": 0, "failed": 0, "last": None}
    assert NoticeJournal(tmp_path).summary() == {}
    assert MIGRATION in _applied(tmp_path)


def test_an_unreadable_old_journal_stops_the_start_and_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _before_the_move(tmp_path, monkeypatch)
    (tmp_path / LEGACY_PRINT_JOURNAL).write_bytes(b"this is not an SQLite file, and long enough to tell" * 4)
    with pytest.raises(StoreError, match=LEGACY_PRINT_JOURNAL):
        open_db(tmp_path)
    assert MIGRATION not in _applied_without_upgrade(tmp_path), "nothing of the migration stayed"
    (tmp_path / LEGACY_PRINT_JOURNAL).unlink()
    assert PrintJournal(tmp_path).claim("M1", "t1")
