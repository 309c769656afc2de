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
