"""SQLite's storage failures turned into the terminal's StoreError kinds, once, on the connection itself.

Every connection to a terminal database is opened by `connect` here (a test checks no other module
calls sqlite3.connect), and the connection and its cursors translate as they raise: execute, fetch,
commit, rollback, the `with` block's commit, backup. So no busy, full, I/O, corrupt or read-only error
leaves the store as a bare sqlite3 exception. Errors that are the program's own (a constraint, a syntax
error, a missing table) pass through untouched: callers rely on sqlite3.IntegrityError for duplicates.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from terminal.errors import (
    StoreBusyError,
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreIOError,
    StoreReadOnlyError,
)

# SQLite's primary result codes (the low byte of the extended code) and what each means here.
_KINDS: dict[int, type[StoreError]] = {
    3: StoreReadOnlyError,  # SQLITE_PERM
    5: StoreBusyError,  # SQLITE_BUSY: another connection holds the lock beyond busy_timeout
    6: StoreBusyError,  # SQLITE_LOCKED: a conflict inside this process's shared cache
    8: StoreReadOnlyError,  # SQLITE_READONLY
    10: StoreIOError,  # SQLITE_IOERR
    11: StoreCorruptError,  # SQLITE_CORRUPT: "database disk image is malformed"
    13: StoreFullError,  # SQLITE_FULL
    14: StoreIOError,  # SQLITE_CANTOPEN
    26: StoreCorruptError,  # SQLITE_NOTADB: "file is not a database"
}

# The kinds this module raises (callers catch these to add what was not recorded, keeping the kind).
STORAGE_FAILURES: tuple[type[StoreError], ...] = tuple(dict.fromkeys(_KINDS.values()))

T = TypeVar("T")


def translate(exc: sqlite3.Error) -> StoreError | None:
    """The StoreError a storage failure stands for, None for an error of the program's own."""
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(code, int):
        return None
    kind = _KINDS.get(code & 0xFF)
    if kind is None:
        return None
    name = getattr(exc, "sqlite_errorname", "")
    error = kind(f"{exc} ({name})" if name else str(exc))
    error.__cause__ = exc
    return error


def _guarded(call: Callable[..., T], *args: Any) -> T:
    try:
        return call(*args)
    except sqlite3.Error as exc:
        error = translate(exc)
        if error is None:
            raise
        raise error from exc


class GuardedCursor(sqlite3.Cursor):
    """A cursor whose storage failures (while executing or fetching rows) raise StoreError kinds."""

    def execute(self, sql: str, parameters: Any = (), /) -> GuardedCursor:
        """As sqlite3.Cursor.execute."""
        _guarded(super().execute, sql, parameters)
        return self

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> GuardedCursor:
        """As sqlite3.Cursor.executemany."""
        _guarded(super().executemany, sql, seq_of_parameters)
        return self

    def executescript(self, sql_script: str, /) -> GuardedCursor:
        """As sqlite3.Cursor.executescript."""
        _guarded(super().executescript, sql_script)
        return self

    def fetchone(self) -> Any:
        """As sqlite3.Cursor.fetchone."""
        return _guarded(super().fetchone)

    def fetchmany(self, size: int | None = 1) -> list[Any]:
        """As sqlite3.Cursor.fetchmany."""
        return _guarded(super().fetchmany, size if size is not None else self.arraysize)

    def fetchall(self) -> list[Any]:
        """As sqlite3.Cursor.fetchall."""
        return _guarded(super().fetchall)

    def __next__(self) -> Any:
        """As iterating a sqlite3.Cursor (a damaged page may only show while rows are read)."""
        return _guarded(super().__next__)


class GuardedConnection(sqlite3.Connection):
    """A connection whose storage failures raise StoreError kinds (its cursors' too)."""

    def cursor(self, factory: Any = GuardedCursor) -> Any:
        """As sqlite3.Connection.cursor, with guarded cursors by default."""
        return super().cursor(factory)

    # sqlite3.Connection.execute & co. do not go through self.cursor(): route them explicitly.
    def execute(self, sql: str, parameters: Any = (), /) -> GuardedCursor:
        """As sqlite3.Connection.execute."""
        cursor: GuardedCursor = self.cursor()
        return cursor.execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> GuardedCursor:
        """As sqlite3.Connection.executemany."""
        cursor: GuardedCursor = self.cursor()
        return cursor.executemany(sql, seq_of_parameters)

    def executescript(self, sql_script: str, /) -> GuardedCursor:
        """As sqlite3.Connection.executescript."""
        cursor: GuardedCursor = self.cursor()
        return cursor.executescript(sql_script)

    def commit(self) -> None:
        """As sqlite3.Connection.commit."""
        _guarded(super().commit)

    def rollback(self) -> None:
        """As sqlite3.Connection.rollback."""
        _guarded(super().rollback)

    def backup(self, target: sqlite3.Connection, **kwargs: Any) -> None:
        """As sqlite3.Connection.backup."""
        _guarded(lambda: super(GuardedConnection, self).backup(target, **kwargs))

    def __exit__(self, *exc_info: Any) -> Any:
        """The `with connection:` block commits (or rolls back) here, C-side: guard that too."""
        return _guarded(super().__exit__, *exc_info)


def connect(path: Path | str, **kwargs: Any) -> sqlite3.Connection:
    """Open a terminal database file with guarded errors (opening a damaged file raises one too)."""
    return _guarded(lambda: sqlite3.connect(path, factory=GuardedConnection, **kwargs))
