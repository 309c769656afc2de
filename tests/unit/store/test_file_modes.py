"""Owner-only state: the database and its side files 0600 whatever the umask; loose modes found and fixed."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from terminal.store.backup import backup
from terminal.store.db import DB_NAME, open_db
from terminal.store.file_modes import fix_modes, loose_modes, set_private_umask
from tests.fakes import FixedClock


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A permissive umask (022), as a shell or a test runner may have: the files must be private anyway."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_wal_and_shm_are_owner_only_under_an_open_umask(tmp_path: Path, open_umask: None) -> None:
    data = tmp_path / "data"
    db = open_db(data)
    db.execute("CREATE TABLE probe (x)")
    db.execute("INSERT INTO probe VALUES (1)")
    files = sorted(data.glob(DB_NAME + "*"))
    assert {p.name for p in files} >= {DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm"}
    assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
    assert _mode(data) == 0o700
    db.close()


def test_a_backup_and_its_manifest_are_owner_only(tmp_path: Path, open_umask: None) -> None:
    db = open_db(tmp_path / "data")
    result = backup(db, tmp_path / "data", tmp_path / "backups", FixedClock().now(), None)
    assert _mode(result.database) == 0o600
    assert _mode(result.manifest) == 0o600


def test_loose_modes_are_found_and_fixed_and_links_left_alone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "logs").mkdir(parents=True)
    data.chmod(0o755)
    (data / "logs").chmod(0o750)
    journal = data / "his_notices.sqlite"
    journal.write_bytes(b"x")
    journal.chmod(0o644)
    log = data / "logs" / "medpay.log"
    log.write_text("line\n")
    log.chmod(0o640)
    private = data / "medpay.sqlite"
    private.write_bytes(b"")
    private.chmod(0o600)
    outside = tmp_path / "models"
    outside.mkdir()
    outside.chmod(0o755)
    (data / "models").symlink_to(outside)

    found = {item.path: (item.mode, item.wanted) for item in loose_modes(data)}
    assert found == {
        data: (0o755, 0o700),
        data / "logs": (0o750, 0o700),
        journal: (0o644, 0o600),
        log: (0o640, 0o600),
    }
    assert {item.path for item in fix_modes(data)} == set(found)
    assert loose_modes(data) == []
    assert (_mode(data), _mode(journal), _mode(log)) == (0o700, 0o600, 0o600)
    assert _mode(outside) == 0o755, "a linked-in folder outside the data folder is not touched"


def test_the_private_umask_makes_new_files_owner_only(tmp_path: Path) -> None:
    previous = set_private_umask()
    try:
        (tmp_path / "made.txt").write_text("x")
        (tmp_path / "folder").mkdir()
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "made.txt") == 0o600
    assert _mode(tmp_path / "folder") == 0o700
