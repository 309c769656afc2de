"""Start-up storage checks: quick_check and a write probe, and the refusal to settle they lead to."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from terminal.errors import StoreCorruptError, StoreReadOnlyError
from terminal.store.db import DB_NAME, open_db
from terminal.store.health import StoreHealth, check_store, quick_check, write_probe
from tests.unit.store.ledger_kit import ledger_folder


def test_a_sound_writable_store_may_settle(tmp_path: Path) -> None:
    health = check_store(open_db(tmp_path), tmp_path)
    assert health.ok
    health.require_settleable()


def test_damaged_pages_fail_the_quick_check_and_settling_is_refused(tmp_path: Path) -> None:
    ledger_folder(tmp_path, 60)
    path = tmp_path / DB_NAME
    with open(path, "r+b") as handle:
        handle.seek(path.stat().st_size // 2 // 4096 * 4096)
        handle.write(random.Random(15).randbytes(16 * 1024))
    db = open_db(tmp_path)
    assert quick_check(db)
    health = check_store(db, tmp_path)
    with pytest.raises(StoreCorruptError, match=r"integrity check.*medpay restore"):
        health.require_settleable()


def test_a_data_folder_that_takes_no_file_fails_the_write_probe(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    (tmp_path / ".write-probe").mkdir()  # the probe cannot create its file there
    failure = write_probe(db, tmp_path)
    assert failure is not None and "cannot be written" in failure
    with pytest.raises(StoreReadOnlyError, match="writable"):
        StoreHealth((), failure).require_settleable()
