"""`medpay backup` and `medpay restore` as a technician runs them: the keys kept apart, restores verified."""

from __future__ import annotations

import random
from pathlib import Path

from terminal.store.db import DB_NAME
from terminal.store.keys import key_path
from tests.integration.test_cli import medpay
from tests.unit.store.ledger_kit import ledger_folder


def test_backup_then_restore_on_a_new_box_with_its_keys(data_dir: Path, tmp_path: Path) -> None:
    ledger_folder(data_dir, 5)
    backed = medpay(
        "backup", str(tmp_path / "backups"), "--keys-to", str(tmp_path / "usb"), data_dir=data_dir
    )
    assert backed.returncode == 0, backed.stderr
    assert "5 settlements, verified" in backed.stdout and "keep apart" in backed.stdout
    copy = next((tmp_path / "backups").glob("medpay-*.sqlite"))
    keys = next((tmp_path / "usb").glob("medpay-*"))
    new_box = tmp_path / "new-box"
    restored = medpay("restore", str(copy), "--keys-from", str(keys), data_dir=new_box)
    assert restored.returncode == 0, restored.stderr
    assert key_path(new_box).read_bytes() == key_path(data_dir).read_bytes()
    verify = medpay("audit", "verify", data_dir=new_box)
    assert verify.returncode == 0 and "settlements and outbox agree" in verify.stdout


def test_backup_without_keys_says_so_and_keys_inside_the_backup_are_refused(
    data_dir: Path, tmp_path: Path
) -> None:
    ledger_folder(data_dir, 1)
    plain = medpay("backup", str(tmp_path / "backups"), data_dir=data_dir)
    assert plain.returncode == 0 and "NOT copied" in plain.stdout
    inside = medpay(
        "backup", str(tmp_path / "backups"), "--keys-to", str(tmp_path / "backups" / "k"), data_dir=data_dir
    )
    assert inside.returncode == 1 and "[CONFIG_INVALID]" in inside.stderr
    assert not list((tmp_path / "backups").rglob("*.key"))


def test_restoring_a_damaged_backup_changes_nothing(data_dir: Path, tmp_path: Path) -> None:
    ledger_folder(data_dir, 60)
    assert medpay("backup", str(tmp_path / "backups"), data_dir=data_dir).returncode == 0
    copy = next((tmp_path / "backups").glob("medpay-*.sqlite"))
    raw = bytearray(copy.read_bytes())
    middle = len(raw) // 2 // 4096 * 4096
    raw[middle : middle + 16384] = random.Random(15).randbytes(16384)
    copy.write_bytes(bytes(raw))
    before = (data_dir / DB_NAME).read_bytes()
    result = medpay("restore", str(copy), data_dir=data_dir)
    assert result.returncode == 1 and "[STORE_CORRUPT]" in result.stderr and "Traceback" not in result.stderr
    assert (data_dir / DB_NAME).read_bytes() == before
