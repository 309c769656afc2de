"""The model manifest is signed: a changed model file with an edited sha256 list fails (issue 17, item 6).

The Why: a zeroed layer plus an edited list gave `doctor` "4 default models verified". The list is now
checked against its detached signature (models/manifest.toml.sig, the policies' trust store) at load
and by doctor.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from terminal.app import build_terminal
from terminal.app.registries import build_face_stage
from terminal.config import DEFAULT_CONFIG, TerminalConfig, load, models_folder
from terminal.diagnostics import _models, _run
from terminal.errors import ModelIntegrityError
from terminal.vision.manifest import MANIFEST_NAME, SIGNATURE_NAME, load_manifest
from tests.fakes import FixedClock

pytestmark = pytest.mark.models


def _models_copy(tmp_path: Path) -> tuple[TerminalConfig, Path]:
    """A models folder like the repository's: the signed manifest and links to the model files."""
    config = load(DEFAULT_CONFIG)
    source = models_folder(config)
    folder = tmp_path / "models"
    folder.mkdir()
    for name in (MANIFEST_NAME, SIGNATURE_NAME):
        shutil.copyfile(source / name, folder / name)
    for entry in load_manifest(source).model:
        if (source / entry.file).exists():
            (folder / entry.file).symlink_to((source / entry.file).resolve())
    return config.model_copy(update={"models": config.models.model_copy(update={"dir": folder})}), folder


def _doctor_models(config: TerminalConfig, data: Path) -> tuple[bool, str]:
    terminal = build_terminal(config, data, FixedClock())
    try:
        check = _run("models", lambda: _models(terminal), "")
    finally:
        terminal.close()
    return check.ok, check.detail


def _zero_a_layer(folder: Path, file: str) -> str:
    """Replace the link by a copy with 64 KiB zeroed in the middle (a layer's weights); its new sha256."""
    data = bytearray((folder / file).read_bytes())
    middle = len(data) // 2
    data[middle : middle + 65536] = bytes(min(65536, len(data) - middle))
    (folder / file).unlink()
    (folder / file).write_bytes(bytes(data))
    return hashlib.sha256(bytes(data)).hexdigest()


def test_the_shipped_manifest_is_signed_and_doctor_says_by_which_key(tmp_path: Path) -> None:
    config, _ = _models_copy(tmp_path)
    ok, detail = _doctor_models(config, tmp_path / "data")
    assert ok, detail
    assert detail.startswith("manifest signed by key ac843185968c4980;")


def test_a_zeroed_layer_with_an_edited_list_fails_doctor_and_the_load(tmp_path: Path) -> None:
    config, folder = _models_copy(tmp_path)
    entry = load_manifest(folder).entry("dlib_resnet")
    new_sha = _zero_a_layer(folder, entry.file)
    text = (folder / MANIFEST_NAME).read_text(encoding="utf-8")
    (folder / MANIFEST_NAME).write_text(text.replace(entry.sha256, new_sha), encoding="utf-8")
    assert load_manifest(folder).entry("dlib_resnet").sha256 == new_sha  # the list now "agrees"
    ok, detail = _doctor_models(config, tmp_path / "data")
    assert not ok
    assert "signature does not verify" in detail and "altered" in detail
    with pytest.raises(ModelIntegrityError, match="signature does not verify"):
        build_face_stage(config)


def test_an_unsigned_manifest_fails_doctor(tmp_path: Path) -> None:
    config, folder = _models_copy(tmp_path)
    (folder / SIGNATURE_NAME).unlink()
    ok, detail = _doctor_models(config, tmp_path / "data")
    assert not ok and "is missing: the model list is unsigned" in detail


def test_a_zeroed_layer_alone_still_fails_its_sha256(tmp_path: Path) -> None:
    config, folder = _models_copy(tmp_path)
    _zero_a_layer(folder, load_manifest(folder).entry("dlib_resnet").file)
    ok, detail = _doctor_models(config, tmp_path / "data")
    assert not ok and "sha256" in detail
