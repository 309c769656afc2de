"""Config loading: the default is valid; mistakes are reported with file and line."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

import terminal.config as config_package
from terminal.app import offline_limits, uplink_backoff
from terminal.config import DEFAULT_CONFIG, REPO_ROOT, Section, TerminalConfig, UplinkSection, data_dir, load
from terminal.config import json_schema as config_schema
from terminal.errors import ConfigError

SCHEMA = REPO_ROOT / "config" / "terminal.schema.json"
# Loading config is plain data: none of these may come along (they slow every CLI start and drag
# the runtime's layers under the config, which is below them).
RUNTIME_MODULES = ("sqlite_utils", "terminal.pipeline.sync", "onnxruntime", "cv2", "httpx")


def test_default_config_is_valid_and_resolves_paths() -> None:
    config = load(DEFAULT_CONFIG)
    assert config.models.embedder.type == "sface"
    # unset: the embedder's measured operating point and the cap derived from it (terminal/app.py)
    assert config.identity.threshold is None and config.identity.max_gallery_for_1n is None
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


def test_uplink_defaults_have_no_upstream_and_sane_limits() -> None:
    section = UplinkSection()
    assert section.url is None
    assert uplink_backoff(section).max_attempts == 8
    assert offline_limits(section).max_age == timedelta(hours=72)
    assert offline_limits(section).max_amount == Decimal("500.00")


def test_uplink_factories_carry_every_configured_value() -> None:
    section = UplinkSection(
        backoff_base_s=0.25, backoff_cap_s=9.0, max_attempts=4, offline_max_amount=Decimal("120.50"),
        offline_max_count=7, offline_max_age_h=5, offline_after_s=90,
    )  # fmt: skip
    backoff = uplink_backoff(section)
    assert (backoff.base, backoff.cap, backoff.max_attempts) == (0.25, 9.0, 4)
    limits = offline_limits(section)
    assert (limits.max_amount, limits.max_count) == (Decimal("120.50"), 7)
    assert (limits.max_age, limits.offline_after) == (timedelta(hours=5), timedelta(seconds=90))


def test_uplink_unknown_keys_and_bad_values_are_refused() -> None:
    with pytest.raises(ValidationError):
        UplinkSection.model_validate({"urll": "http://127.0.0.1:1"})
    with pytest.raises(ValidationError):
        UplinkSection.model_validate({"timeout_s": 0})


def test_the_shipped_config_is_the_demo_and_a_config_that_does_not_say_is_production(tmp_path: Path) -> None:
    assert load(DEFAULT_CONFIG).terminal.mode == "demo"
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    unsaid = tmp_path / "terminal.toml"
    unsaid.write_text("\n".join(row for row in text.splitlines() if not row.startswith("mode =")), "utf-8")
    assert load(unsaid).terminal.mode == "production"


def test_an_unknown_mode_is_refused_with_its_line(tmp_path: Path) -> None:
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    bad = tmp_path / "terminal.toml"
    bad.write_text(text.replace('mode = "demo"', 'mode = "test"'), encoding="utf-8")
    line = next(n for n, row in enumerate(text.splitlines(), 1) if row.startswith("mode ="))
    with pytest.raises(ConfigError, match=rf"terminal.toml:{line}: terminal.mode"):
        load(bad)


def _sections() -> list[type[BaseModel]]:
    """Every model reachable from TerminalConfig through its fields."""
    found: list[type[BaseModel]] = []
    todo: list[type[BaseModel]] = [TerminalConfig]
    while todo:
        model = todo.pop()
        if model in found:
            continue
        found.append(model)
        for field in model.model_fields.values():
            kinds = [field.annotation, *getattr(field.annotation, "__args__", ())]
            todo.extend(k for k in kinds if isinstance(k, type) and issubclass(k, BaseModel))
    return found


def test_every_section_is_strict_plain_data_with_every_field_described() -> None:
    sections = _sections()
    assert len(sections) >= 15, [s.__name__ for s in sections]
    for section in sections:
        assert issubclass(section, Section), f"{section.__name__} does not share the strict base"
        assert section.model_config.get("extra") == "forbid" and section.model_config.get("frozen")
        for name, field in section.model_fields.items():
            assert field.description, f"{section.__name__}.{name} has no description"
        # plain data: no methods beyond pydantic's own
        own = {
            name
            for klass in section.__mro__
            if klass.__module__.startswith("terminal.config")
            for name, value in vars(klass).items()
            if callable(value) and not name.startswith("__") and not isinstance(value, type)
        }
        assert not own, f"{section.__name__} carries behaviour: {sorted(own)}"


def test_every_section_is_exported_where_importers_look() -> None:
    exported = {getattr(config_package, name) for name in config_package.__all__}
    missing = [s.__name__ for s in _sections() if s not in exported and not s.__name__.startswith("_")]
    assert not missing


def test_loading_config_imports_no_runtime_module() -> None:
    probe = (
        "import sys, terminal.config\n"
        "terminal.config.load(terminal.config.DEFAULT_CONFIG)\n"
        f"print([m for m in {RUNTIME_MODULES!r} if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO_ROOT, timeout=120
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_the_committed_json_schema_is_fresh() -> None:
    committed = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert committed == config_schema(), "regenerate: medpay config schema > config/terminal.schema.json"
