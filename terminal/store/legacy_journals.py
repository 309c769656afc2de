"""Migration step: the receipt and HIS-notice journals move into the terminal database.

Up to now each lived in its own SQLite file in the data folder (printed_receipts.sqlite with a `prints`
table, his_notices.sqlite with a `notices` table). Their rows are copied in once, on the first start of
this version, so a receipt printed before the upgrade is not printed again and a notice the HIS has not
heard yet is still sent. The old files are left untouched; nothing reads them afterwards.
"""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import sqlite_utils

from terminal.errors import StoreError
from terminal.store.guard import STORAGE_FAILURES, connect

log = logging.getLogger(__name__)

LEGACY_PRINT_JOURNAL = "printed_receipts.sqlite"
LEGACY_NOTICE_JOURNAL = "his_notices.sqlite"

SCHEMA = (
    """
    CREATE TABLE printed_receipts (
        msgid TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        at TEXT NOT NULL,
        detail TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE his_notices (
        chrg_bchno TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        msgid TEXT,
        body TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        detail TEXT NOT NULL DEFAULT '',
        at TEXT NOT NULL
    )
    """,
)

# (old file, its table, the new table, the columns both have)
_IMPORTS = (
    (LEGACY_PRINT_JOURNAL, "prints", "printed_receipts", ("msgid", "state", "at", "detail")),
    (
        LEGACY_NOTICE_JOURNAL,
        "notices",
        "his_notices",
        ("chrg_bchno", "state", "msgid", "body", "attempts", "detail", "at"),
    ),
)


def move_journals_in(db: sqlite_utils.Database) -> None:
    """Create the two journal tables and copy in the rows of the old journal files beside the database."""
    for statement in SCHEMA:
        db.execute(statement)
    folder = _folder_of(db)
    if folder is None:
        return
    for file_name, old_table, new_table, columns in _IMPORTS:
        path = folder / file_name
        if not path.is_file():
            continue
        rows = _old_rows(path, old_table, columns)
        names, marks = ", ".join(columns), ", ".join("?" for _ in columns)
        for row in rows:
            db.execute(f"INSERT OR IGNORE INTO {new_table} ({names}) VALUES ({marks})", list(row))
        log.info("imported %d rows of %s into %s; the file is no longer used", len(rows), path, new_table)


def _folder_of(db: sqlite_utils.Database) -> Path | None:
    """The folder of the database file; None for an in-memory database (nothing to import)."""
    for _, name, file in db.execute("PRAGMA database_list").fetchall():
        if name == "main" and file:
            return Path(file).parent
    return None


def _old_rows(path: Path, table: str, columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    try:
        with closing(connect(path, timeout=5.0)) as old:
            found = old.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()
            if found is None:
                return []
            return list(old.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY rowid").fetchall())
    except STORAGE_FAILURES as exc:
        raise type(exc)(f"cannot import the old journal {path}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        # Starting without it could print a receipt twice or never tell the HIS: refuse, and say which file.
        raise StoreError(f"cannot import the old journal {path}: {exc}") from exc
