"""The base of the small journals worker threads write (receipts printed, HIS notices), in the terminal DB."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from terminal.store import db as store_db
from terminal.store.db import DB_NAME, open_db
from terminal.store.guard import connect


class WorkerJournal:
    """A journal over the terminal database that opens one short connection per call."""

    def __init__(self, data_dir: Path) -> None:
        # Opened once to bring the schema up to date (and import the journal files of older versions).
        open_db(data_dir).close()
        self.path = data_dir / DB_NAME

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        # Why not the service's connection: a worker thread writing on it could land inside a settlement's
        # open transaction and be rolled back with it. Committed when the block ends without an error.
        timeout = store_db.BUSY_TIMEOUT_MS / 1000
        with closing(connect(self.path, timeout=timeout)) as db, db:
            db.execute("PRAGMA synchronous=FULL")
            yield db
