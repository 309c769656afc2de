"""Is the terminal's storage fit to take money: an integrity check and a write probe, said in words.

Run when the terminal builds its checkout (serving, `medpay settle`) and by `medpay doctor`. When either
fails the checkout refuses to settle, with a StoreCorruptError or StoreReadOnlyError saying why and what
to do, instead of writing more settlements into a damaged file or failing half-way on a read-only disk.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from terminal.errors import StoreCorruptError, StoreError, StoreReadOnlyError
from terminal.store.db import immediate

log = logging.getLogger(__name__)

# How many problems quick_check lists before it stops (the first few say enough).
MAX_PROBLEMS = 20
PROBE_COUNTER = "store_write_probe"
PROBE_FILE = ".write-probe"


def quick_check(db: sqlite_utils.Database) -> list[str]:
    """SQLite's quick_check of the whole file: empty when it is sound, else what is damaged."""
    try:
        rows = [str(row[0]) for row in db.execute(f"PRAGMA quick_check({MAX_PROBLEMS})").fetchall()]
    except StoreError as exc:
        return [str(exc)]
    return [] if rows == ["ok"] else [line for row in rows for line in row.splitlines() if line.strip()]


def write_probe(db: sqlite_utils.Database, folder: Path) -> str | None:
    """Write and commit one row, and create and remove a file in the data folder; None when both work."""
    try:
        with immediate(db):
            db.execute(
                "INSERT INTO counters (name, value) VALUES (?, 1)"
                " ON CONFLICT(name) DO UPDATE SET value = value + 1",
                [PROBE_COUNTER],
            )
    except StoreError as exc:
        return f"the database cannot be written: {exc}"
    # The database may take a write while the folder does not (a new -wal or -journal file, a backup).
    probe = folder / PROBE_FILE
    try:
        with open(probe, "w", encoding="ascii") as handle:
            handle.write(datetime.now(UTC).isoformat())
            handle.flush()
            os.fsync(handle.fileno())
        probe.unlink()
    except OSError as exc:
        return f"the data folder {folder} cannot be written: {exc.strerror or exc}"
    return None


def free_bytes(folder: Path) -> int:
    """Free space on the data folder's disk."""
    return shutil.disk_usage(folder).free


@dataclass(frozen=True)
class StoreHealth:
    """The result of the start-up checks: the integrity problems found and why writing failed, if it did."""

    problems: tuple[str, ...]
    write_failure: str | None

    @property
    def ok(self) -> bool:
        """Both checks passed."""
        return not self.problems and self.write_failure is None

    def require_settleable(self) -> None:
        """Raise the StoreError that says why no settlement may be recorded now; nothing when none."""
        if self.problems:
            raise StoreCorruptError(
                "the ledger file failed its integrity check at start-up, so no settlement is recorded: "
                f"{'; '.join(self.problems[:3])}. Run `medpay doctor` and `medpay audit verify`, then "
                "restore the last good backup with `medpay restore` (docs/operations.md)"
            )
        if self.write_failure is not None:
            raise StoreReadOnlyError(
                f"{self.write_failure}; no settlement is recorded. Make the data folder writable "
                "(permissions, a read-only or full mount) and restart the terminal; `medpay doctor` checks it"
            )


def check_store(db: sqlite_utils.Database, folder: Path) -> StoreHealth:
    """Run the integrity check and the write probe; log what failed."""
    health = StoreHealth(tuple(quick_check(db)), write_probe(db, folder))
    if health.problems:
        log.error("database integrity check failed: %s", "; ".join(health.problems[:3]))
    if health.write_failure:
        log.error("write probe failed: %s", health.write_failure)
    return health
