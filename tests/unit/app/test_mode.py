"""The one mode switch: production refuses what only a demo may use."""

from __future__ import annotations

from pathlib import Path

import pytest

from terminal.app import build_terminal
from terminal.config import DEFAULT_CONFIG, TerminalConfig, load
from terminal.errors import ConfigError
from tests.fakes import FixedClock


def _with_mode(mode: str) -> TerminalConfig:
    config = load(DEFAULT_CONFIG)
    return config.model_copy(update={"terminal": config.terminal.model_copy(update={"mode": mode})})


def test_production_refuses_placeholder_bundles_and_the_development_key(tmp_path: Path) -> None:
    terminal = build_terminal(_with_mode("production"), tmp_path, FixedClock())
    with pytest.raises(ConfigError, match="development key ac843185968c4980"):
        _ = terminal.policies


def test_production_refuses_placeholder_bundles_signed_by_a_trusted_key(tmp_path: Path) -> None:
    from terminal.app import refuse_demo_bundles

    config = _with_mode("production")
    shelf = build_terminal(_with_mode("demo"), tmp_path, FixedClock()).policies
    with pytest.raises(ConfigError, match="placeholder policy bundles"):
        refuse_demo_bundles(config, shelf.bundles, {"a-production-key": b"\0" * 32})


def test_demo_mode_prices_with_the_shipped_bundles(tmp_path: Path) -> None:
    terminal = build_terminal(_with_mode("demo"), tmp_path, FixedClock())
    assert terminal.policies.bundles, "the shipped placeholder bundles load in demo mode"


def test_the_demo_refuses_a_production_config(tmp_path: Path) -> None:
    from terminal.cli.demo import run_demo

    production = tmp_path / "terminal.toml"
    text = DEFAULT_CONFIG.read_text(encoding="utf-8").replace('mode = "demo"', 'mode = "production"')
    assert 'mode = "production"' in text
    # relative paths in the shipped file resolve against its folder: keep them pointing there
    production.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="production config"):
        run_demo(production, tmp_path / "data")


def test_production_refuses_a_placeholder_bundle_given_by_hand_for_what_if_pricing(tmp_path: Path) -> None:
    # regression: what-if pricing and `settle --policy` took any bundle the trusted keys verified
    from terminal.cli.settle import price_with_person_file

    repo = DEFAULT_CONFIG.parent
    terminal = build_terminal(_with_mode("production"), tmp_path, FixedClock())
    with pytest.raises(ConfigError, match="production mode"):
        price_with_person_file(
            terminal,
            repo / "bills" / "xiangtan-inpatient.json",
            repo / "people" / "xiangtan-disabled-resident.json",
            repo / "policies" / "430300-2025.json",
        )


def test_demo_mode_prices_what_if_with_a_bundle_given_by_hand(tmp_path: Path) -> None:
    from terminal.cli.settle import price_with_person_file

    repo = DEFAULT_CONFIG.parent
    terminal = build_terminal(_with_mode("demo"), tmp_path, FixedClock())
    priced = price_with_person_file(
        terminal,
        repo / "bills" / "xiangtan-inpatient.json",
        repo / "people" / "xiangtan-disabled-resident.json",
        repo / "policies" / "430300-2025.json",
    )
    assert priced["setlinfo"]["medfee_sumamt"] == "102300.00"
