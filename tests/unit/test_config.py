"""Config loading: the default is valid; mistakes are reported with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from terminal.config import DEFAULT_CONFIG, data_dir, load
from terminal.errors import ConfigError


def test_default_config_is_valid_and_resolves_paths() -> None:
    config = load(DEFAULT_CONFIG)
    assert config.identity.threshold == 0.5
    assert config.settlement.policies.is_absolute()
    assert config.settlement.policies.is_dir()
    assert config.settlement.trusted_keys.is_file()
    assert config.settlement.catalog.is_file()


def test_unknown_key_is_refused_with_its_line(tmp_path: Path) -> None:
    text = DEFAULT_CONFIG.read_text(encoding="utf-8").replace(
        "max_face_attempts = 3", "max_face_attempts = 3\nthreshhold = 0.4"
    )
    bad = tmp_path / "terminal.toml"
    bad.write_text(text, encoding="utf-8")
    line = text.splitlines().index("threshhold = 0.4") + 1
    with pytest.raises(ConfigError, match=rf"terminal.toml:{line}: identity.threshhold: unknown key"):
        load(bad)


def test_out_of_range_value_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "terminal.toml"
    bad.write_text(DEFAULT_CONFIG.read_text(encoding="utf-8").replace("port = 8080", "port = 99999"))
    with pytest.raises(ConfigError, match=r"service.port"):
        load(bad)


def test_broken_toml_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "terminal.toml"
    bad.write_text("[terminal\n")
    with pytest.raises(ConfigError):
        load(bad)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load(tmp_path / "absent.toml")


def test_data_dir_prefers_flag_then_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDPAY_DATA_DIR", str(tmp_path / "env"))
    assert data_dir(tmp_path / "flag") == tmp_path / "flag"
    assert data_dir() == tmp_path / "env"
    monkeypatch.delenv("MEDPAY_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "medpay"


def _with_devices(tmp_path: Path, tables: str) -> Path:
    path = tmp_path / "terminal.toml"
    path.write_text(DEFAULT_CONFIG.read_text(encoding="utf-8") + tables, encoding="utf-8")
    return path


def test_default_config_fits_no_devices() -> None:
    devices = load(DEFAULT_CONFIG).devices
    assert (devices.qr, devices.card, devices.barcode) == (None, None, None)


def test_devices_take_pyserial_urls_with_per_kind_baud_rates(tmp_path: Path) -> None:
    path = _with_devices(
        tmp_path,
        '[devices.qr]\nurl = "socket://127.0.0.1:7001"\n[devices.card]\nurl = "hwgrep://1a86:7523"\n',
    )
    devices = load(path).devices
    assert devices.qr is not None and devices.qr.url == "socket://127.0.0.1:7001"
    assert devices.qr.baudrate == 9600
    assert devices.card is not None and devices.card.baudrate == 115200
    assert devices.barcode is None


def test_an_unknown_device_is_refused_with_its_line(tmp_path: Path) -> None:
    path = _with_devices(tmp_path, '[devices.scale]\nurl = "/dev/ttyUSB3"\n')
    line = path.read_text(encoding="utf-8").splitlines().index("[devices.scale]") + 1
    with pytest.raises(ConfigError, match=rf"terminal.toml:{line}: devices.scale: unknown key"):
        load(path)


def test_receipt_printer_takes_a_url_a_gb_encoding_and_a_width(tmp_path: Path) -> None:
    printer = load(_with_devices(tmp_path, '[devices.printer]\nurl = "/dev/usb/lp0"\n')).devices.printer
    assert printer is not None and (printer.encoding, printer.width) == ("gb18030", 32)
    utf8 = '[devices.printer]\nurl = "socket://10.0.0.9:9100"\nencoding = "utf-8"\n'
    with pytest.raises(ConfigError, match=r"devices.printer.encoding"):
        load(_with_devices(tmp_path, utf8))


def test_a_device_without_a_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"devices.card.url"):
        load(_with_devices(tmp_path, '[devices.card]\nurl = ""\n'))
