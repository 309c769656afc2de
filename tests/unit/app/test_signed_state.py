"""Signed policy bundles are monotonic and bound (issue 17, item 6): revision, region, file name, mode."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from devkit.sign import DEV_KEY, write_json
from terminal.app import build_terminal
from terminal.config import DEFAULT_CONFIG, TerminalConfig, load
from terminal.diagnostics import _policy, _run
from terminal.errors import ConfigError, PolicyError
from terminal.settlement.signing import TrustedKeys, generate_signing_key, sign_bundle
from tests.fakes import FixedClock

SHIPPED = DEFAULT_CONFIG.parent / "policies"


def _config(policies: Path, mode: str = "demo") -> TerminalConfig:
    config = load(DEFAULT_CONFIG)
    return config.model_copy(
        update={
            "terminal": config.terminal.model_copy(update={"mode": mode}),
            "settlement": config.settlement.model_copy(update={"policies": policies}),
        }
    )


def _signed(folder: Path, name: str, **changes: Any) -> Path:
    """The shipped 2025 bundle with `changes`, signed with the development key, saved as `name`."""
    bundle = json.loads((SHIPPED / "430300-2025.json").read_text(encoding="utf-8"))["bundle"] | changes
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / name, sign_bundle(bundle, DEV_KEY.read_bytes()))
    return folder / name


def _policies(data: Path, folder: Path) -> list[str]:
    terminal = build_terminal(_config(folder), data, FixedClock())
    try:
        return [b.bundle_id for b in terminal.policies.bundles]
    finally:
        terminal.close()


def test_an_older_revision_after_a_newer_one_is_refused_and_audited(tmp_path: Path) -> None:
    folder, data = tmp_path / "policies", tmp_path / "data"
    _signed(folder, "430300-2025.json", revision=3)
    assert _policies(data, folder) == ["430300-2025"]
    _signed(folder, "430300-2025.json", revision=2)  # validly signed, but older: put back by someone
    with pytest.raises(PolicyError, match="revision 2 is older than revision 3"):
        _policies(data, folder)
    terminal = build_terminal(_config(folder), data, FixedClock())
    try:
        actions = [
            (r["action"], r["subject"]) for r in terminal.db.query("SELECT action, subject FROM audit")
        ]
    finally:
        terminal.close()
    assert ("signed-state-refused", "430300-2025") in actions
    _signed(folder, "430300-2025.json", revision=4)
    assert _policies(data, folder) == ["430300-2025"]


def test_a_bundle_saved_under_another_regions_name_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    _signed(
        folder, "430300-2025.json", admdvs="110100", bundle_id="110100-2025", region_name="北京市"
    ).rename(folder / "430302-2025.json")
    with pytest.raises(PolicyError, match="saved under another region or year's name"):
        _policies(tmp_path / "data", folder)


def test_another_regions_bundle_is_refused_on_the_treating_place_shelf(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    _signed(folder, "430100-2025.json", admdvs="430100", bundle_id="430100-2025", region_name="长沙市")
    with pytest.raises(PolicyError, match=r"not this terminal's prefecture 430300 \(430302\)"):
        _policies(tmp_path / "data", folder)


def test_the_shipped_bundles_carry_a_revision_and_match_the_demo_terminal(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    shutil.copytree(SHIPPED, folder)
    assert _policies(tmp_path / "data", folder) == ["430300-2025", "430300-2026"]


def test_doctor_fails_placeholder_bundles_in_production_even_under_a_production_key(tmp_path: Path) -> None:
    # A region's own key (not the development one) signed a placeholder: production still refuses it.
    pem, entry = generate_signing_key()
    trusted = tmp_path / "trusted_keys.json"
    write_json(trusted, TrustedKeys(keys=(entry.model_copy(update={"note": "region key"}),)).model_dump())
    folder = tmp_path / "policies"
    folder.mkdir()
    bundle = json.loads((SHIPPED / "430300-2025.json").read_text(encoding="utf-8"))["bundle"]
    write_json(folder / "430300-2025.json", sign_bundle(bundle, pem))
    config = _config(folder, "production")
    config = config.model_copy(
        update={"settlement": config.settlement.model_copy(update={"trusted_keys": trusted})}
    )
    terminal = build_terminal(config, tmp_path / "data", FixedClock())
    try:
        policy = _run("policy", lambda: _policy(terminal), "")
        with pytest.raises(ConfigError, match="placeholder"):
            _ = terminal.policies  # nothing can be priced (settled) with it either
    finally:
        terminal.close()
    assert not policy.ok
    assert "production mode refuses placeholder policy bundles (430300-2025)" in policy.detail
