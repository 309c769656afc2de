"""`medpay doctor` on a healthy terminal and on a broken one."""

from __future__ import annotations

from pathlib import Path

import pytest

from terminal.store.keys import key_path
from tests.integration.test_cli import medpay


@pytest.mark.usefixtures("require_models")
def test_doctor_passes_on_a_provisioned_terminal(data_dir: Path) -> None:
    result = medpay("doctor", data_dir=data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all checks passed" in result.stdout
    assert "6 faces found" in result.stdout


@pytest.mark.usefixtures("require_models")
def test_doctor_names_an_open_key_file_and_the_fix(data_dir: Path) -> None:
    key_path(data_dir).chmod(0o644)
    result = medpay("doctor", data_dir=data_dir)
    assert result.returncode == 1
    assert "FAIL template key" in result.stdout
    assert "chmod 600" in result.stdout
