"""Operator-pack models at runtime: the SCRFD and ArcFace adapters on tiny graphs, built from config."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import onnx
import pytest
from pydantic import ValidationError

from terminal.app import DETECTORS, EMBEDDER_METRICS, EMBEDDERS, build_face_stage, embedder_model_id
from terminal.clock import CST
from terminal.config import DEFAULT_CONFIG, DetectorConfig, EmbedderConfig, ModelsConfig, TerminalConfig, load
from terminal.domain import Frame
from terminal.errors import ConfigError, ImageError, ModelError, ModelMissingError
from terminal.provision.operator_pack import install_operator_pack
from terminal.vision.align import ARCFACE_TEMPLATE, align_chip
from terminal.vision.insightface_pack import ArcFaceEmbedder, ScrfdDetector, arcface_embedder, scrfd_detector
from terminal.vision.operator_pack import PackModel, read_pack_manifest
from terminal.vision.runtime import create_session
from tests.conftest import MODELS
from tests.operator_packs import (
    DIM,
    FACE,
    SMALL_FACE,
    arcface_graph,
    expected_template,
    gate,
    scrfd_graph,
    write_pack,
)

AT = datetime(2026, 3, 2, 10, 0, tzinfo=CST)
BRIGHT = 230  # a uniform frame this bright opens the tiny detector's gate (sigmoid(10 · 0.8))


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """A models folder holding the shipped manifest and the tiny pack, its licence accepted."""
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copyfile(MODELS / "manifest.toml", folder / "manifest.toml")
    shutil.copyfile(MODELS / "manifest.toml.sig", folder / "manifest.toml.sig")  # the list is signed
    pack = write_pack(tmp_path / "usb" / "tinypack")
    install_operator_pack(folder, pack, True, AT, "technician")
    return folder


def _entry(models_dir: Path, name: str) -> PackModel:
    manifest = read_pack_manifest(models_dir / "packs" / "tinypack" / "manifest.toml")
    return next(entry for entry in manifest.model if entry.name == name)


def _frame(side: int, value: int = BRIGHT) -> np.ndarray:
    return np.full((side, side, 3), value, dtype=np.uint8)


def test_the_detector_returns_the_boxes_scores_and_landmarks_the_graph_encodes(models_dir: Path) -> None:
    detector = scrfd_detector(models_dir, "tinypack_det", 1, min_score=0.5)
    image = _frame(640)
    faces = detector.detect(image)
    assert len(faces) == 2
    for face, encoded in zip(faces, (FACE, SMALL_FACE), strict=True):
        assert (face.x1, face.y1, face.x2, face.y2) == pytest.approx(encoded.expected_box(), abs=1e-3)
        assert np.asarray(face.landmarks) == pytest.approx(np.asarray(encoded.expected_landmarks()), abs=1e-3)
        # the declared normalisation ((pixel - 127.5) / 128) reached the graph: the gate is what it computes
        assert face.score == pytest.approx(encoded.score * gate(image), abs=1e-4)


def test_the_detector_maps_boxes_back_to_a_larger_frame(models_dir: Path) -> None:
    detector = scrfd_detector(models_dir, "tinypack_det", 1, min_score=0.5)
    face = detector.detect(_frame(1280))[0]
    assert (face.x1, face.y1, face.x2, face.y2) == pytest.approx(FACE.expected_box(2.0), abs=1e-2)
    assert np.asarray(face.landmarks) == pytest.approx(np.asarray(FACE.expected_landmarks(2.0)), abs=1e-2)


def test_a_black_frame_holds_no_face_and_min_score_drops_the_weaker_face(models_dir: Path) -> None:
    assert scrfd_detector(models_dir, "tinypack_det", 1, min_score=0.5).detect(_frame(640, 0)) == []
    strict = scrfd_detector(models_dir, "tinypack_det", 1, min_score=0.8)
    assert [round(f.x1) for f in strict.detect(_frame(640))] == [round(FACE.expected_box()[0])]


def test_the_detector_refuses_an_image_that_is_not_bgr_uint8(models_dir: Path) -> None:
    detector = scrfd_detector(models_dir, "tinypack_det", 1, min_score=0.5)
    with pytest.raises(ImageError, match="H×W×3 uint8"):
        detector.detect(np.zeros((640, 640), dtype=np.uint8))


def test_an_scrfd_without_keypoints_is_refused(models_dir: Path, tmp_path: Path) -> None:
    model = onnx.load_from_string(scrfd_graph())
    del model.graph.output[6:]  # scores and boxes only: nothing to align a chip with
    path = tmp_path / "det_no_kps.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelError, match="has 6 outputs; an SCRFD with five keypoints has 9 or 15"):
        ScrfdDetector(create_session(path), _entry(models_dir, "tinypack_det"), 0.5)


def test_the_embedder_returns_the_unit_template_the_graph_encodes(models_dir: Path) -> None:
    embedder = arcface_embedder(models_dir, "tinypack_rec", 1)
    assert (embedder.chip_size, embedder.dim, embedder.metric) == (112, DIM, "cosine")
    assert np.array_equal(embedder.template, ARCFACE_TEMPLATE)
    sha = _entry(models_dir, "tinypack_rec").sha256
    assert embedder.model_id == f"tinypack_rec@{sha[:12]}" and embedder.threshold == 0.35
    chips = np.zeros((3, 112, 112, 3), dtype=np.uint8)
    chips[0] = (200, 100, 50)  # RGB: a swapped colour order gives another template
    chips[1] = (50, 100, 200)
    chips[2, :56] = 255
    templates = embedder.embed(chips)
    assert templates.shape == (3, DIM) and templates.dtype == np.float32
    assert np.linalg.norm(templates, axis=1) == pytest.approx(1.0, abs=1e-5)
    for chip, template in zip(chips, templates, strict=True):
        assert template == pytest.approx(expected_template(chip), abs=1e-5)
    assert float(templates[0] @ templates[1]) < 0.99


@pytest.mark.parametrize("batch", [1, "N"])
def test_the_embedder_runs_fixed_and_dynamic_batch_graphs_alike(
    models_dir: Path, tmp_path: Path, batch: int | str
) -> None:
    path = tmp_path / f"rec_{batch}.onnx"
    path.write_bytes(arcface_graph(batch))
    embedder = ArcFaceEmbedder(create_session(path), path, _entry(models_dir, "tinypack_rec"), "t/rec")
    chips = np.stack([np.full((112, 112, 3), v, dtype=np.uint8) for v in (10, 128, 240)])
    templates = embedder.embed(chips)
    assert templates == pytest.approx(np.stack([expected_template(c) for c in chips]), abs=1e-5)
    assert embedder.embed(chips[:0]).shape == (0, DIM)


def test_an_embedder_whose_graph_differs_from_its_declared_dim_is_refused(
    models_dir: Path, tmp_path: Path
) -> None:
    entry = _entry(models_dir, "tinypack_rec").model_copy(update={"dim": 256})
    path = models_dir / "packs" / "tinypack" / "rec_tiny.onnx"
    with pytest.raises(ModelError, match=r"its manifest declares \[N, 256\]"):
        ArcFaceEmbedder(create_session(path), path, entry, "tinypack/tinypack_rec")


def _pack_config(
    models_dir: Path, detector: str = "tinypack_det", embedder: str = "tinypack_rec"
) -> TerminalConfig:
    config = load(DEFAULT_CONFIG)
    models = config.models.model_copy(
        update={
            "dir": models_dir,
            "detector": DetectorConfig(type="scrfd", model=detector, min_score=0.5),
            "embedder": EmbedderConfig(type="arcface", model=embedder),
        }
    )
    return config.model_copy(update={"models": models})


def test_the_registry_builds_the_pack_models_from_config(models_dir: Path) -> None:
    assert "scrfd" in DETECTORS and "arcface" in EMBEDDERS and EMBEDDER_METRICS["arcface"] == "cosine"
    stage = build_face_stage(_pack_config(models_dir))
    assert isinstance(stage.detector, ScrfdDetector) and isinstance(stage.embedder, ArcFaceEmbedder)
    image = _frame(640)
    observations = stage.observe(Frame(image, "pack", AT))
    # the small face (64 px) fails the 80 px quality gate; the large one is aligned and embedded
    assert len(observations) == 1
    observation = observations[0]
    assert (observation.box.x1, observation.box.y2) == pytest.approx(FACE.expected_box()[::3], abs=1e-3)
    chip = align_chip(image, np.asarray(observation.box.landmarks), 112, ARCFACE_TEMPLATE)
    assert observation.template == pytest.approx(expected_template(chip), abs=1e-5)


def test_templates_of_a_pack_embedder_are_tagged_with_the_id_the_identifier_compares_under(
    models_dir: Path,
) -> None:
    # regression: embedder_model_id knew only the shipped embedders and raised KeyError for "arcface"
    config = _pack_config(models_dir)
    assert embedder_model_id(config) == build_face_stage(config).embedder.model_id


@pytest.mark.parametrize(
    ("detector", "embedder"), [("nope_det", "tinypack_rec"), ("tinypack_det", "nope_rec")]
)
def test_a_config_selecting_a_pack_model_not_installed_says_how_to_install_it(
    models_dir: Path, detector: str, embedder: str
) -> None:
    fix = r"is not installed .*--operator-pack FOLDER --accept-licence"
    with pytest.raises(ModelMissingError, match=fix):
        build_face_stage(_pack_config(models_dir, detector, embedder))


def test_a_pack_model_of_the_other_kind_is_refused(models_dir: Path) -> None:
    with pytest.raises(ModelError, match="tinypack/tinypack_rec is of kind arcface, not scrfd"):
        build_face_stage(_pack_config(models_dir, detector="tinypack_rec"))


def test_pack_types_must_name_their_model_and_shipped_types_must_not() -> None:
    with pytest.raises(ValidationError, match='type "scrfd" runs an operator-pack model'):
        ModelsConfig.model_validate({"detector": {"type": "scrfd"}})
    with pytest.raises(ValidationError, match='type "sface" is a shipped model'):
        ModelsConfig.model_validate({"embedder": {"type": "sface", "model": "tinypack_rec"}})
    models = ModelsConfig.model_validate({"embedder": {"type": "arcface", "model": "tinypack_rec"}})
    assert models.embedder.model == "tinypack_rec"


def test_a_pack_type_without_a_model_that_escaped_validation_is_refused_on_build(models_dir: Path) -> None:
    config = _pack_config(models_dir)
    # model_copy does not validate: the factory still refuses rather than guess a model
    models = config.models.model_copy(update={"embedder": EmbedderConfig(type="arcface")})
    with pytest.raises(ConfigError, match='type "arcface" runs an operator-pack model: name it with model'):
        build_face_stage(config.model_copy(update={"models": models}))


def test_a_config_file_selecting_arcface_without_a_model_fails_with_its_line(tmp_path: Path) -> None:
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    assert 'type = "sface"' in text
    path = tmp_path / "terminal.toml"
    path.write_text(text.replace('type = "sface"', 'type = "arcface"'), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"terminal\.toml:\d+: models\.embedder: .*name it with model"):
        load(path)
    path.write_text(text.replace('type = "sface"', 'type = "arcface"\nmodel = "x"'), encoding="utf-8")
    assert load(path).models.embedder.model == "x"
