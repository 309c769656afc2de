"""SQLite's storage failures arrive as StoreError kinds, once, from every way the store reaches SQLite."""

from __future__ import annotations

import random
import re
import sqlite3
from pathlib import Path

import pytest

from terminal.errors import (
    StoreBusyError,
    StoreCorruptError,
    StoreFullError,
    StoreIOError,
    StoreReadOnlyError,
)
from terminal.store import db as store_db
from terminal.store.db import DB_NAME, open_db
from terminal.store.guard import connect, translate
from terminal.store.journal import WorkerJournal
from tests.conftest import REPO
from tests.unit.store.ledger_kit import ledger_folder, settle_some


def test_a_write_behind_another_connections_lock_is_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_db, "BUSY_TIMEOUT_MS", 10)
    db = open_db(tmp_path)
    other = open_db(tmp_path)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreBusyError, match="locked"):
            settle_some(db, 1)
        with pytest.raises(StoreBusyError), WorkerJournal(tmp_path)._db() as conn:
            conn.execute("INSERT INTO counters (name, value) VALUES ('x', 1)")
    finally:
        other.execute("ROLLBACK")
    assert settle_some(db, 1), "the same connection writes once the lock is gone"


def test_a_full_database_is_full(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages + 2}")
    with pytest.raises(StoreFullError, match="full"):
        settle_some(db, 50)
    assert db.execute("SELECT COUNT(*) FROM settlements").fetchone()[0] < 50


def test_a_read_only_connection_is_read_only(tmp_path: Path) -> None:
    open_db(tmp_path).close()
    conn = connect(f"file:{tmp_path / DB_NAME}?mode=ro", uri=True)
    with pytest.raises(StoreReadOnlyError):
        conn.execute("INSERT INTO counters (name, value) VALUES ('x', 1)")


def test_a_file_that_is_not_a_database_is_corrupt(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(random.Random(1).randbytes(64 * 1024))
    with pytest.raises(StoreCorruptError, match="not a database"):
        open_db(tmp_path)


def test_damaged_pages_are_corrupt_while_rows_are_read(tmp_path: Path) -> None:
    ledger_folder(tmp_path, 60)
    path = tmp_path / DB_NAME
    offset = path.stat().st_size // 2 // 4096 * 4096
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(random.Random(15).randbytes(16 * 1024))
    db = open_db(tmp_path)
    with pytest.raises(StoreCorruptError, match="malformed"):
        list(db.query("SELECT * FROM settlements"))


def test_an_io_error_is_an_io_error_and_the_programs_own_errors_pass_through() -> None:
    io = sqlite3.OperationalError("disk I/O error")
    io.sqlite_errorcode = 10 | (3 << 8)  # type: ignore[attr-defined]  # SQLITE_IOERR_WRITE
    assert isinstance(translate(io), StoreIOError)
    constraint = sqlite3.IntegrityError("UNIQUE constraint failed")
    constraint.sqlite_errorcode = 2067  # type: ignore[attr-defined]  # SQLITE_CONSTRAINT_UNIQUE
    assert translate(constraint) is None
    assert translate(sqlite3.ProgrammingError("closed")) is None


def test_constraint_errors_still_reach_their_callers_as_sqlite_errors(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    db.execute("INSERT INTO counters (name, value) VALUES ('x', 1)")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO counters (name, value) VALUES ('x', 2)")


def test_no_module_but_the_guard_opens_sqlite_itself() -> None:
    # Every connection comes from store/guard.py's connect, so no storage failure escapes untyped; a
    # sqlite_utils.Database is only ever built over such a connection.
    direct, wrapped = [], []
    for path in sorted((REPO / "terminal").rglob("*.py")):
        text, name = path.read_text("utf-8"), path.relative_to(REPO).as_posix()
        direct += [name for _ in re.finditer(r"sqlite3\.connect\(", text)]
        wrapped += [m.group(1) for m in re.finditer(r"sqlite_utils\.Database\(([^)]*)", text)]
    assert direct == ["terminal/store/guard.py"]
    assert wrapped and all(arg.startswith(("connect(", "conn")) for arg in wrapped), wrapped
