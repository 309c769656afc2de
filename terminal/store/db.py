"""The terminal's SQLite file: WAL mode, FULL sync, named migrations applied once."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from terminal.errors import StoreError, StoreReadOnlyError
from terminal.store.audit_key import bind_audit_key, ensure_audit_key
from terminal.store.file_modes import FOLDER_MODE, create_private_file
from terminal.store.guard import STORAGE_FAILURES, connect
from terminal.store.migrations import MIGRATIONS

log = logging.getLogger(__name__)

DB_NAME = "medpay.sqlite"
# How long a writer waits for another connection's lock before StoreBusyError. Tests lower it (a hook,
# read at every open) so a held lock fails a step at once instead of after five seconds.
BUSY_TIMEOUT_MS = 5000


def open_db(data_dir: Path) -> sqlite_utils.Database:
    """Open (creating if needed) the terminal database and bring its schema up to date."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    path = data_dir / DB_NAME
    try:
        if not path.exists():
            # Owner-only from the first byte, whatever the caller's umask; SQLite copies this mode to
            # the -wal and -shm files it creates beside it. On a read-only folder SQLite says so below.
            with suppress(OSError):
                create_private_file(path)
        # The service hands the connection to worker threads one at a time (under its lock).
        db = sqlite_utils.Database(connect(path, check_same_thread=False))
        # The chain's MACs (and migration 0017's re-keying) need the key before anything is written.
        bind_audit_key(db, ensure_audit_key(data_dir))
        db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_MS)}")
        db.enable_wal()
        # FULL: a settlement the patient saw confirmed must survive a power cut, not just a crash.
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        # Deleted rows (withdrawn consent, purged journals, the clear columns migration 0015 drops) are
        # overwritten with zeros, not left readable in free pages of a copied or stolen file.
        db.execute("PRAGMA secure_delete=ON")
        if migrate(db):
            # The old pages of rewritten rows may linger in the WAL until a checkpoint: write them back now.
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except STORAGE_FAILURES as exc:
        if not _writable(data_dir, path):
            # SQLite says "unable to open" (it needs to write the -wal and -shm files): say the real cause.
            raise StoreReadOnlyError(
                f"cannot open database {path}: the data folder {data_dir} is read-only ({exc})"
            ) from exc
        # The same kind (busy, read-only, corrupt …), saying which file.
        raise type(exc)(f"cannot open database {path}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open database {path}: {exc}") from exc
    return db


def _writable(folder: Path, path: Path) -> bool:
    """Whether this process may write the folder and the file (False on a read-only mount, even as root)."""
    return os.access(folder, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply the migrations not yet applied, each in its own transaction; return their names."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = {row["name"] for row in db.query("SELECT name FROM _migrations")}
    applied = []
    for name, step in MIGRATIONS:
        if name in done:
            continue
        with db.atomic():
            if callable(step):
                step(db)
            else:
                for statement in (s.strip() for s in step.split(";")):
                    if statement:
                        db.execute(statement)
            db.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                [name, datetime.now(UTC).isoformat()],
            )
        log.info("applied migration %s", name)
        applied.append(name)
    return applied


@contextmanager
def immediate(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """A transaction that takes the write lock at BEGIN; nested inside another one, a savepoint."""
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    # Why IMMEDIATE: a deferred transaction that reads first takes a snapshot; if another process
    # (`medpay sync`, a second settle) commits before our first write, SQLite cannot upgrade the
    # stale snapshot and fails at once with "database is locked", busy_timeout or not. Taking the
    # lock at BEGIN makes the later writer wait on busy_timeout instead.
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.conn.rollback()
        raise
    try:
        db.execute("COMMIT")
    except BaseException:
        db.conn.rollback()
        raise
