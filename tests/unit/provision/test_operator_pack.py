"""Operator packs: installed only with the licence text accepted, every file verified, never half-visible."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tomllib
from datetime import datetime
from pathlib import Path

import pytest

from terminal.clock import CST
from terminal.errors import ModelError, ModelIntegrityError, ModelMissingError
from terminal.provision import operator_pack
from terminal.provision.main import main as provision_main
from terminal.provision.operator_pack import install_operator_pack
from terminal.vision.manifest import sha256_of
from terminal.vision.operator_pack import (
    ACCEPTANCE,
    PACKS_DIR,
    PackManifest,
    find_pack_model,
    installed_packs,
    read_pack_manifest,
)
from tests.conftest import MODELS, REPO
from tests.operator_packs import LICENCE_TEXT, arcface_graph, pack_manifest, scrfd_graph, write_pack

AT = datetime(2026, 3, 2, 10, 0, tzinfo=CST)


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """A models folder with the shipped manifest (so name clashes are checked) and no model files."""
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copyfile(MODELS / "manifest.toml", folder / "manifest.toml")
    return folder


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    """The operator's pack folder, as brought on a USB stick."""
    return write_pack(tmp_path / "usb" / "tinypack")


def _install(models_dir: Path, pack: Path, accept: bool = True) -> list[str]:
    return install_operator_pack(models_dir, pack, accept, AT, "technician")


def _visible(models_dir: Path) -> list[str]:
    """What the runtime can see: the names of installed packs."""
    return [manifest.pack.name for _, manifest in installed_packs(models_dir)]


def _leftovers(models_dir: Path) -> list[str]:
    root = models_dir / PACKS_DIR
    live = {(root / name).resolve() for name in _visible(models_dir)}
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".") and p.resolve() not in live)


def test_an_accepted_pack_is_installed_verified_and_found_by_model_name(models_dir: Path, pack: Path) -> None:
    assert _install(models_dir, pack) == ["tinypack_det", "tinypack_rec"]
    installed = models_dir / PACKS_DIR / "tinypack"
    manifest = read_pack_manifest(installed / "manifest.toml")
    for entry in manifest.model:
        assert sha256_of(installed / entry.file) == entry.sha256
    assert (installed / "LICENSE.txt").read_text(encoding="utf-8") == LICENCE_TEXT
    record = tomllib.loads((installed / ACCEPTANCE).read_text(encoding="utf-8"))
    assert record["licence"] == "Tiny Test Model Licence 1.0"
    assert record["licence_sha256"] == sha256_of(pack / "LICENSE.txt")
    assert record["accepted_by"] == "technician" and record["accepted_at"] == AT.isoformat()
    found = find_pack_model(models_dir, "tinypack_rec", "arcface")
    assert found.model_id == f"tinypack_rec@{sha256_of(pack / 'rec_tiny.onnx')[:12]}"
    assert found.verified() == installed / "rec_tiny.onnx"
    # the shipped manifest is never rewritten
    assert (models_dir / "manifest.toml").read_bytes() == (MODELS / "manifest.toml").read_bytes()
    assert _leftovers(models_dir) == []


def test_reinstalling_the_same_pack_changes_nothing(models_dir: Path, pack: Path) -> None:
    _install(models_dir, pack)
    version = (models_dir / PACKS_DIR / "tinypack").resolve()
    assert _install(models_dir, pack) == []
    assert (models_dir / PACKS_DIR / "tinypack").resolve() == version


def test_a_tampered_model_file_is_refused_and_nothing_is_installed(models_dir: Path, pack: Path) -> None:
    data = bytearray((pack / "rec_tiny.onnx").read_bytes())
    data[-1] ^= 0xFF
    (pack / "rec_tiny.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=r"pack model tinypack_rec.*refused"):
        _install(models_dir, pack)
    assert _visible(models_dir) == [] and _leftovers(models_dir) == []


def test_without_accept_licence_the_pack_is_refused_naming_the_licence(models_dir: Path, pack: Path) -> None:
    with pytest.raises(ModelError, match=r"Tiny Test Model Licence 1\.0.*--accept-licence"):
        _install(models_dir, pack, accept=False)
    assert not (models_dir / PACKS_DIR).exists()


def test_a_pack_without_its_licence_text_is_refused(models_dir: Path, tmp_path: Path) -> None:
    pack = write_pack(tmp_path / "usb" / "tinypack", licence=False)
    with pytest.raises(ModelError, match=r"text of licence 'Tiny Test Model Licence 1\.0' \(LICENSE\.txt\)"):
        _install(models_dir, pack)
    assert not (models_dir / PACKS_DIR).exists()


def test_a_missing_model_file_is_refused(models_dir: Path, pack: Path) -> None:
    (pack / "det_tiny.onnx").unlink()
    with pytest.raises(ModelMissingError, match=r"det_tiny\.onnx is missing"):
        _install(models_dir, pack)
    assert _visible(models_dir) == [] and _leftovers(models_dir) == []


def _failing_on_second_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the second file copy stop half-way, as a pulled USB stick or a kill would."""
    real = operator_pack.copy_file
    calls: list[Path] = []

    def copy(source: Path, target: Path) -> None:
        calls.append(source)
        if len(calls) == 2:
            data = source.read_bytes()
            target.write_bytes(data[: len(data) // 2])
            raise OSError(5, "Input/output error")
        real(source, target)

    monkeypatch.setattr(operator_pack, "copy_file", copy)


def test_an_interrupted_copy_is_never_visible_and_the_next_install_completes(
    models_dir: Path, pack: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_on_second_copy(monkeypatch)
    with pytest.raises(OSError, match="Input/output error"):
        _install(models_dir, pack)
    assert _visible(models_dir) == []
    with pytest.raises(ModelMissingError, match="not installed"):
        find_pack_model(models_dir, "tinypack_det", "scrfd")
    monkeypatch.undo()
    assert _install(models_dir, pack) == ["tinypack_det", "tinypack_rec"]
    assert _visible(models_dir) == ["tinypack"] and _leftovers(models_dir) == []


def test_a_killed_install_leaves_a_dot_folder_that_the_next_install_removes(
    models_dir: Path, pack: Path
) -> None:
    # what a SIGKILL between mkdtemp and the swap leaves: an unreferenced, partial version folder
    stale = models_dir / PACKS_DIR / ".tinypack-killed"
    stale.mkdir(parents=True)
    (stale / "det_tiny.onnx").write_bytes(b"half")
    assert _visible(models_dir) == []
    _install(models_dir, pack)
    assert not stale.exists() and _visible(models_dir) == ["tinypack"]


def test_a_failed_upgrade_keeps_the_installed_version_in_use(
    models_dir: Path, pack: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(models_dir, pack)
    before = (models_dir / PACKS_DIR / "tinypack").resolve()
    # a new version of the pack: a different licence text, so it is not "unchanged"
    (pack / "LICENSE.txt").write_text(LICENCE_TEXT + "Amended 2026.\n", encoding="utf-8")
    _failing_on_second_copy(monkeypatch)
    with pytest.raises(OSError):
        _install(models_dir, pack)
    assert (models_dir / PACKS_DIR / "tinypack").resolve() == before
    assert find_pack_model(models_dir, "tinypack_det", "scrfd").verified().is_file()
    monkeypatch.undo()
    _install(models_dir, pack)
    assert (models_dir / PACKS_DIR / "tinypack").resolve() != before
    assert not before.exists() and _leftovers(models_dir) == []


def test_a_licence_text_changed_after_acceptance_stops_the_pack_loading(models_dir: Path, pack: Path) -> None:
    _install(models_dir, pack)
    (models_dir / PACKS_DIR / "tinypack" / "LICENSE.txt").write_text("other terms\n", encoding="utf-8")
    with pytest.raises(ModelError, match="no recorded acceptance of licence"):
        find_pack_model(models_dir, "tinypack_det", "scrfd")


def test_a_model_file_changed_after_install_is_refused_on_load(models_dir: Path, pack: Path) -> None:
    _install(models_dir, pack)
    (models_dir / PACKS_DIR / "tinypack" / "det_tiny.onnx").write_bytes(scrfd_graph(()))
    with pytest.raises(ModelIntegrityError, match="re-install the pack"):
        find_pack_model(models_dir, "tinypack_det", "scrfd").verified()


def test_a_pack_model_named_like_a_shipped_model_is_refused(models_dir: Path, pack: Path) -> None:
    text = (pack / "manifest.toml").read_text(encoding="utf-8").replace('"tinypack_rec"', '"sface"')
    (pack / "manifest.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ModelError, match=r"\['sface'\] already name shipped models"):
        _install(models_dir, pack)


def test_a_graph_that_is_not_its_declared_kind_is_refused_before_it_is_visible(
    models_dir: Path, pack: Path
) -> None:
    # the operator's manifest declares the embedder's file as the detector, with its true sha256
    rec = arcface_graph()
    (pack / "det_tiny.onnx").write_bytes(rec)
    det_sha = sha256_of(pack / "det_tiny.onnx")
    rec_sha = sha256_of(pack / "rec_tiny.onnx")
    (pack / "manifest.toml").write_text(pack_manifest("tinypack", det_sha, rec_sha), encoding="utf-8")
    refusal = r"pack model tinypack_det input is \[1, 3, 112, 112\], its manifest says 640x640"
    with pytest.raises(ModelError, match=refusal):
        _install(models_dir, pack)
    assert _visible(models_dir) == [] and _leftovers(models_dir) == []


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('file = "det_tiny.onnx"', 'file = "../det_tiny.onnx"', "String should match pattern"),
        ('name = "tinypack"', 'name = "../tinypack"', "String should match pattern"),
        ("dim = 512", "", "must declare dim"),
        ("size = [112, 112]", "size = [128, 128]", r"must take \[112, 112\] chips"),
        ('output = "9 outputs', 'threshold = 0.4\noutput = "9 outputs', "is a detector"),
        ('file = "rec_tiny.onnx"', 'file = "LICENSE.txt"', "model files must be distinct"),
    ],
)
def test_a_pack_manifest_that_declares_what_cannot_run_is_refused(
    pack: Path, old: str, new: str, message: str
) -> None:
    text = (pack / "manifest.toml").read_text(encoding="utf-8")
    assert old in text
    (pack / "manifest.toml").write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ModelError, match=message):
        read_pack_manifest(pack / "manifest.toml")


def test_the_test_pack_manifest_is_valid() -> None:
    # guards the refusals above against passing because the unmodified manifest is already invalid
    PackManifest.model_validate(tomllib.loads(pack_manifest(det_sha="0" * 64, rec_sha="1" * 64)))


def test_the_command_refuses_without_accept_licence_and_installs_with_it(
    models_dir: Path, pack: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # --data-dir: the install is audited in the terminal's database (never the user's own data folder)
    data = models_dir.parent / "data"
    command = [
        "--data-dir",
        str(data),
        "--models-dir",
        str(models_dir),
        "models",
        "--operator-pack",
        str(pack),
    ]
    with caplog.at_level(logging.ERROR, logger="medpay.provision"):
        assert provision_main(command) == 1
    assert "Tiny Test Model Licence 1.0" in caplog.text and "--accept-licence" in caplog.text
    assert not (models_dir / PACKS_DIR).exists()
    assert provision_main([*command, "--accept-licence"]) == 0
    assert _visible(models_dir) == ["tinypack"]
    assert os.path.islink(models_dir / PACKS_DIR / "tinypack")


def test_importing_the_pack_adapters_loads_neither_insightface_nor_onnx() -> None:
    # the default terminal must not pay for insightface; the runtime never imports onnx
    script = (
        "import json, sys\nimport terminal.vision.insightface_pack\nprint(json.dumps(sorted(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True, timeout=120
    )
    loaded = json.loads(result.stdout)
    assert "terminal.vision.insightface_pack" in loaded
    assert [m for m in loaded if m.split(".")[0] in ("insightface", "onnx")] == []


def test_an_installed_pack_is_audited_with_its_sha256s_and_the_licence_accepted(
    models_dir: Path, pack: Path, tmp_path: Path
) -> None:
    from terminal.provision.operator_pack import audit_pack_acceptance
    from terminal.store.audit_check import verify_all
    from terminal.store.db import open_db

    installed = _install(models_dir, pack)
    data = tmp_path / "data"
    audit_pack_acceptance(data, models_dir, pack, AT)
    db = open_db(data)
    try:
        row = next(iter(db.query("SELECT actor, action, subject, detail FROM audit")))
        assert verify_all(db) == []
    finally:
        db.close()
    detail = json.loads(row["detail"])
    assert (row["actor"], row["action"]) == ("technician:technician", "operator-pack")
    assert sorted(detail["models"]) == sorted(installed)
    assert all(len(sha) == 64 for sha in detail["models"].values())
    assert detail["licence_sha256"] and detail["accepted_by"] == "technician"
