"""A real operator pack end to end, when MEDPAY_OPERATOR_PACK names its folder (skipped otherwise).

The folder is laid out as docs/model-packs.md says (e.g. insightface's buffalo_l files with a manifest
the operator wrote and the licence text it holds); it must declare one scrfd and one arcface model.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from terminal.app import build_face_stage
from terminal.clock import CST
from terminal.config import DEFAULT_CONFIG, DetectorConfig, EmbedderConfig, load
from terminal.domain import Frame
from terminal.provision.operator_pack import install_operator_pack
from terminal.vision.images import load_image
from terminal.vision.operator_pack import read_pack_manifest
from tests.conftest import MODELS, insightface_image

PACK = os.environ.get("MEDPAY_OPERATOR_PACK")
pytestmark = pytest.mark.skipif(not PACK, reason="set MEDPAY_OPERATOR_PACK to a pack folder to run")
AT = datetime(2026, 3, 2, 10, 0, tzinfo=CST)


def test_a_real_pack_installs_and_finds_and_embeds_the_six_faces_of_t1(tmp_path: Path) -> None:
    folder = Path(str(PACK))
    manifest = read_pack_manifest(folder / "manifest.toml")
    # the pack's own declarations say which model is which; the test only reads them
    detector = next(e for e in manifest.model if e.kind == "scrfd")
    embedder = next(e for e in manifest.model if e.kind == "arcface")
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    shutil.copyfile(MODELS / "manifest.toml", models_dir / "manifest.toml")
    shutil.copyfile(MODELS / "manifest.toml.sig", models_dir / "manifest.toml.sig")
    install_operator_pack(models_dir, folder, True, AT, "test")
    config = load(DEFAULT_CONFIG)
    models = config.models.model_copy(
        update={
            "dir": models_dir,
            # insightface's own default detection threshold; the kiosk's must be measured
            "detector": DetectorConfig(type="scrfd", model=detector.name, min_score=0.5, min_face_size=20),
            "embedder": EmbedderConfig(type="arcface", model=embedder.name),
        }
    )
    stage = build_face_stage(config.model_copy(update={"models": models}))
    image = load_image(insightface_image("t1.jpg"))
    faces = stage.observe(Frame(image, "t1", AT))
    assert len(faces) == 6
    templates = np.stack([face.template for face in faces])
    assert templates.shape == (6, embedder.dim)
    assert np.linalg.norm(templates, axis=1) == pytest.approx(1.0, abs=1e-4)
    # six different people: no pair is as alike as one face seen twice
    similarity = templates @ templates.T
    assert float(similarity[~np.eye(6, dtype=bool)].max()) < 0.5
    # the same photo at another scale: every face found again matches one of the six
    smaller = np.ascontiguousarray(image[::2, ::2])
    again = stage.observe(Frame(smaller, "t1/2", AT))
    assert len(again) >= 5
    best = (np.stack([face.template for face in again]) @ templates.T).max(axis=1)
    assert float(best.min()) > 0.7
