"""Backups through SQLite's online backup API and verified restores, on real files."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from terminal.app.key_files import key_files
from terminal.config import DEFAULT_CONFIG, load
from terminal.errors import ConfigError, StoreCorruptError
from terminal.store.backup import backup, restore
from terminal.store.db import DB_NAME, open_db
from terminal.store.keys import create_key, key_path
from tests.fakes import FixedClock
from tests.unit.store.ledger_kit import ledger_folder, settle_some


def _keys(data: Path) -> dict[str, Path]:
    return key_files(load(DEFAULT_CONFIG), data)


def _count(folder: Path) -> int:
    db = open_db(folder)
    try:
        return int(db.execute("SELECT COUNT(*) FROM settlements").fetchone()[0])
    finally:
        db.close()


def test_a_backup_taken_while_another_writer_is_mid_transaction_holds_only_what_was_committed(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    db = open_db(data)
    settle_some(db, 5)
    writer = open_db(data)  # the serving terminal, mid-settlement
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE counters SET value = value + 1000 WHERE name = 'msgid'")
    try:
        result = backup(db, data, tmp_path / "backups", FixedClock().now(), None)
    finally:
        writer.execute("ROLLBACK")
    assert result.settlements == 5 and result.keys is None
    assert result.database.parent == tmp_path / "backups" and result.manifest.exists()
    assert not list((tmp_path / "backups").glob("*.part"))


def test_keys_go_only_to_a_separate_place(tmp_path: Path) -> None:
    data = tmp_path / "data"
    create_key(data)
    db = open_db(data)
    at = FixedClock().now()
    for inside in (tmp_path / "backups", tmp_path / "backups" / "keys", tmp_path):
        with pytest.raises(ConfigError, match="must not travel with the database"):
            backup(db, data, tmp_path / "backups", at, inside)
    result = backup(db, data, tmp_path / "backups", at, tmp_path / "usb-keys", _keys(data))
    assert (
        result.keys is not None
        and (result.keys / "keys" / "templates.key").read_bytes() == key_path(data).read_bytes()
    )
    assert (result.keys / "keys" / "templates.key").stat().st_mode & 0o077 == 0
    assert not list((tmp_path / "backups").rglob("*.key")), "no key next to the database copy"


def test_restore_verifies_then_replaces_and_keeps_the_replaced_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ledger_folder(data, 4)
    db = open_db(data)
    result = backup(db, data, tmp_path / "backups", FixedClock().now(), None)
    settle_some(db, 2)  # after the backup
    db.close()
    assert _count(data) == 6
    replaced = restore(result.database, data, FixedClock().now())
    assert _count(data) == 4
    assert replaced is not None and replaced.exists()


def test_a_damaged_backup_is_refused_and_nothing_is_replaced(tmp_path: Path) -> None:
    source = tmp_path / "source"
    ledger_folder(source, 60)
    damaged = tmp_path / "damaged.sqlite"
    raw = bytearray((source / DB_NAME).read_bytes())
    middle = len(raw) // 2 // 4096 * 4096
    raw[middle : middle + 16384] = random.Random(15).randbytes(16384)
    damaged.write_bytes(bytes(raw))
    data = tmp_path / "data"
    ledger_folder(data, 3)
    before = (data / DB_NAME).read_bytes()
    with pytest.raises(StoreCorruptError, match="nothing was replaced"):
        restore(damaged, data, FixedClock().now())
    assert (data / DB_NAME).read_bytes() == before
    # Nothing left behind: the database and the keys folder (its audit key) it already had.
    assert sorted(p.name for p in data.iterdir()) == ["keys", DB_NAME]


def test_restore_puts_keys_back_but_never_over_a_different_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    create_key(data)
    db = open_db(data)
    result = backup(db, data, tmp_path / "backups", FixedClock().now(), tmp_path / "usb-keys", _keys(data))
    db.close()
    assert result.keys is not None
    fresh = tmp_path / "new-box"
    restore(result.database, fresh, FixedClock().now(), result.keys, _keys(fresh))
    assert key_path(fresh).read_bytes() == key_path(data).read_bytes()
    other = tmp_path / "other-box"
    create_key(other)
    with pytest.raises(ConfigError, match="differs"):
        restore(result.database, other, FixedClock().now(), result.keys, _keys(other))
    assert not (other / DB_NAME).exists()


def test_every_key_file_the_terminal_holds_is_backed_up_apart_and_restored_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    create_key(data)
    db = open_db(data)  # makes keys/audit.key
    settle_some(db, 2)
    # what provisioning and the config add: the uplink keys beside the database, tokens, the merchant key
    (data / "uplink_ed25519.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----ed")
    (data / "uplink_sm2.key").write_bytes(b"5m2")
    (data / "keys" / "device.key").write_bytes(b"d" * 32)
    (data / "keys" / "cashier.token").write_bytes(b"tok")
    merchant = tmp_path / "etc" / "merchant.key"
    merchant.parent.mkdir()
    merchant.write_bytes(b"m" * 40)
    config = load(DEFAULT_CONFIG)
    config = config.model_copy(update={"payment": config.payment.model_copy(update={"key_file": merchant})})
    held = key_files(config, data)
    assert set(held) >= {"keys/templates.key", "keys/audit.key", "keys/device.key", "keys/cashier.token",
                         "uplink_ed25519.pem", "uplink_sm2.key", "payment/merchant.key"}  # fmt: skip
    result = backup(db, data, tmp_path / "backups", FixedClock().now(), tmp_path / "usb", held)
    db.close()
    assert result.keys is not None
    copied = {p.relative_to(result.keys).as_posix() for p in result.keys.rglob("*") if p.is_file()}
    assert copied == {name for name, path in held.items() if path.is_file()}
    assert all(p.stat().st_mode & 0o077 == 0 for p in result.keys.rglob("*"))
    backups = [p.name for p in (tmp_path / "backups").rglob("*") if p.is_file()]
    assert all(p.endswith((".sqlite", ".json")) for p in backups), backups
    # a new box: every key back where it was, owner-only whatever the umask
    new = tmp_path / "new-box"
    new_merchant = tmp_path / "new-etc" / "merchant.key"
    target = config.model_copy(
        update={"payment": config.payment.model_copy(update={"key_file": new_merchant})}
    )
    restore(result.database, new, FixedClock().now(), result.keys, key_files(target, new))
    for name, path in held.items():
        if not path.is_file():
            continue
        placed = new_merchant if name.startswith("payment/") else new / name
        assert placed.read_bytes() == path.read_bytes(), name
        assert placed.stat().st_mode & 0o777 == 0o600, name
    assert _count(new) == 2
