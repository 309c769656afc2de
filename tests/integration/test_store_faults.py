"""A damaged ledger file and a read-only data folder, as a technician meets them: real files, real CLI.

16 KB of random bytes written into the middle of a medpay.sqlite holding settlements: `doctor` and
`audit verify` report it and no settlement is recorded into it. A read-only data folder (a read-only
bind mount in a private mount namespace when run as root, where permissions do not bind; chmod
otherwise): `doctor` says so, `serve` and `settle` refuse with a typed one-line error, no traceback.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from terminal.app import build_terminal
from terminal.bill_json import load_bill
from terminal.config import DEFAULT_CONFIG, load
from terminal.demo_data import SAMPLE_BILL
from terminal.domain import Match
from terminal.errors import StoreCorruptError
from terminal.store.db import DB_NAME
from tests.fakes import FixedClock
from tests.integration.test_cli import CONFIG, _known_person, medpay
from tests.unit.store.ledger_kit import ledger_folder

PAGE = 4096


def _damage_middle(path: Path) -> None:
    offset = path.stat().st_size // 2 // PAGE * PAGE
    assert offset >= 4 * PAGE, "past the header and the schema pages"
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(random.Random(15).randbytes(16 * 1024))


@pytest.fixture
def damaged(data_dir: Path) -> Path:
    """A data folder whose ledger held 80 settlements, then had 16 KB of its middle overwritten."""
    _known_person(data_dir)
    ledger_folder(data_dir, 80)
    _damage_middle(data_dir / DB_NAME)
    return data_dir


def test_doctor_and_audit_verify_report_a_damaged_ledger(damaged: Path) -> None:
    doctor = medpay("doctor", data_dir=damaged)
    assert doctor.returncode == 1 and "Traceback" not in doctor.stderr
    lines = doctor.stdout.splitlines()
    assert any(line.startswith("FAIL integrity") for line in lines), doctor.stdout
    assert any(line.startswith("FAIL database") for line in lines), doctor.stdout
    assert "medpay restore" in doctor.stdout
    verify = medpay("audit", "verify", data_dir=damaged)
    assert verify.returncode == 1 and "Traceback" not in verify.stderr
    assert "intact" not in verify.stdout
    assert verify.stdout.startswith("audit: "), verify.stdout + verify.stderr


def test_nothing_is_settled_into_a_damaged_ledger(data_dir: Path) -> None:
    psn_no = _known_person(data_dir)
    ledger_folder(data_dir, 80)
    healthy = build_terminal(load(DEFAULT_CONFIG), data_dir, FixedClock())
    priced = healthy.checkout.price(load_bill(SAMPLE_BILL), psn_no)
    healthy.close()
    _damage_middle(data_dir / DB_NAME)
    terminal = build_terminal(load(DEFAULT_CONFIG), data_dir, FixedClock())
    try:
        with pytest.raises(StoreCorruptError, match="integrity check at start-up"):
            terminal.checkout.settle(priced, Match(psn_no, "credential"))
    finally:
        terminal.close()
    bill = str(SAMPLE_BILL)
    result = medpay("settle", "--bill", bill, "--person-id", psn_no, data_dir=data_dir)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("medpay: error:") and "[STORE_CORRUPT]" in last, result.stderr


@pytest.fixture
def read_only(data_dir: Path) -> Iterator[list[str]]:
    """A command prefix that runs `medpay` with the data folder read-only."""
    _known_person(data_dir)
    if os.geteuid() != 0:
        for path in (data_dir, *data_dir.rglob("*")):
            path.chmod(path.stat().st_mode & ~0o222)
        yield []
        for path in (data_dir, *data_dir.rglob("*")):
            path.chmod(path.stat().st_mode | 0o200)
        return
    if shutil.which("unshare") is None:
        pytest.skip("running as root without unshare: no way to make a folder read-only")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespace here: {probe.stderr!r}")
    yield ["unshare", "-m", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(data_dir)]


def _medpay_read_only(prefix: list[str], data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MEDPAY_DATA_DIR": str(data_dir)}
    command = [*prefix, sys.executable, "-m", "terminal.cli.main", "--config", str(CONFIG), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)


def test_a_read_only_data_folder_is_named_by_doctor_and_refused_by_serve_and_settle(
    read_only: list[str], data_dir: Path
) -> None:
    doctor = _medpay_read_only(read_only, data_dir, "doctor")
    assert doctor.returncode == 1 and "Traceback" not in doctor.stderr
    probe = next(line for line in doctor.stdout.splitlines() if line.startswith("FAIL write probe"))
    assert "read-only" in probe, doctor.stdout
    assert "make the data folder writable" in doctor.stdout
    bill = str(SAMPLE_BILL)
    for args in (("settle", "--bill", bill, "--person-id", "x"), ("serve", "--port", "9")):
        result = _medpay_read_only(read_only, data_dir, *args)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith("medpay: error:") and "[STORE_READ_ONLY]" in result.stderr, (
            result.stderr
        )
        assert "read-only" in result.stderr
