"""`medpay doctor` on a healthy terminal and on a broken one."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_bridge.simulate import CardSimulator, TcpEndpoint
from scripts.provision_config import Answers, write_config
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


def test_doctor_probes_each_configured_reader_and_names_the_fix(data_dir: Path, tmp_path: Path) -> None:
    endpoint = TcpEndpoint()
    endpoint.start()
    CardSimulator(endpoint)
    config = tmp_path / "terminal.toml"
    write_config(config, Answers(card=endpoint.url, qr=str(tmp_path / "ttyQR-unplugged")))
    try:
        result = medpay("doctor", data_dir=data_dir, config=config)
    finally:
        endpoint.stop()
    lines = result.stdout.splitlines()
    assert result.returncode == 1
    card = next(line for line in lines if "card reader" in line)
    assert card.startswith("ok   card reader") and "firmware 'MEDPAY-SIM-CARD 1.0'" in card
    qr = lines.index(next(line for line in lines if "QR scanner" in line))
    assert lines[qr].startswith("FAIL QR scanner") and "unreachable" in lines[qr]
    assert "fix: check the cable" in lines[qr + 1]
    assert any(line.startswith("ok   barcode scanner not configured") for line in lines)
