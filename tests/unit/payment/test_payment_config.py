"""`[payment]`: optional, complete when set, key file relative to the config; the adapter built from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from terminal.app import build_terminal
from terminal.app.payment import build_payment_gateway
from terminal.config import DEFAULT_CONFIG, PaymentSection, load
from terminal.errors import ConfigError
from terminal.payment.http import HttpPaymentGateway
from tests.fakes import FixedClock


def _config(tmp_path: Path, table: str) -> Path:
    path = tmp_path / "terminal.toml"
    path.write_text(DEFAULT_CONFIG.read_text(encoding="utf-8") + table, encoding="utf-8")
    # The shipped config's relative paths must still resolve from the temporary folder's copy.
    for name in ("policies", "catalog", "bills"):
        (tmp_path / name).symlink_to(DEFAULT_CONFIG.parent / name)
    return path


def test_no_payment_section_means_no_gateway(tmp_path: Path) -> None:
    config = load(DEFAULT_CONFIG)
    assert config.payment == PaymentSection() and config.payment.url is None
    assert (config.payment.qr_expires_s, config.payment.userpaying_give_up_s) == (120, 30.0)
    assert build_payment_gateway(config.payment, FixedClock()) is None
    assert build_terminal(config, tmp_path, FixedClock()).payment_gateway is None


def test_a_url_needs_a_merchant_and_a_key_file(tmp_path: Path) -> None:
    config = load(_config(tmp_path, '[payment]\nurl = "http://127.0.0.1:8767"\n'))
    with pytest.raises(ConfigError, match="needs merchant_id and key_file"):
        _ = build_terminal(config, tmp_path / "data", FixedClock()).payment_gateway


def test_the_key_file_resolves_next_to_the_config_and_builds_the_adapter(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "merchant.key"
    key.parent.mkdir()
    key.write_text("f" * 64)
    key.chmod(0o600)
    table = "\n".join(
        [
            "[payment]",
            'url = "http://127.0.0.1:8767"',
            'merchant_id = "MEDPAY-DEMO"',
            'key_file = "keys/merchant.key"',
            "",
        ]
    )
    config = load(_config(tmp_path, table))
    assert config.payment.key_file == key.resolve()
    terminal = build_terminal(config, tmp_path / "data", FixedClock())
    gateway = terminal.payment_gateway
    assert isinstance(gateway, HttpPaymentGateway)
    terminal.close()


def test_an_open_key_file_stops_the_build(tmp_path: Path) -> None:
    key = tmp_path / "merchant.key"
    key.write_text("f" * 64)
    key.chmod(0o644)
    section = PaymentSection(url="http://127.0.0.1:8767", merchant_id="M1", key_file=key)
    with pytest.raises(ConfigError, match="readable by others"):
        build_payment_gateway(section, FixedClock())


@pytest.mark.parametrize(
    "table",
    ['[payment]\nqr_expires_s = 5\n', '[payment]\ntimeout_s = 0\n', '[payment]\nurl = "ftp://x"\n',
     '[payment]\nmerchant_id = "has space"\n'],
)  # fmt: skip
def test_out_of_range_payment_values_are_refused(tmp_path: Path, table: str) -> None:
    with pytest.raises(ConfigError, match="payment"):
        load(_config(tmp_path, table))
