"""The SFace embedder on the real model file (skips when it is not provisioned)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from terminal.app import build_terminal
from terminal.config import DEFAULT_CONFIG, EmbedderConfig, load
from terminal.domain import Frame
from terminal.errors import ImageError, ModelError, ModelMissingError
from terminal.pipeline.face import FaceStage
from terminal.vision.align import ARCFACE_TEMPLATE, align_chip
from terminal.vision.manifest import load_manifest, verified_path
from terminal.vision.metric import score_matrix
from terminal.vision.runtime import create_session
from terminal.vision.sface import SFaceEmbedder
from tests.conftest import MODELS, insightface_image
from tests.fakes import FixedClock

pytestmark = pytest.mark.models


def _sface_path() -> Path:
    try:
        return verified_path(MODELS, load_manifest(MODELS).entry("sface"))
    except ModelMissingError:
        pytest.skip("SFace model not provisioned (models/face_recognition_sface_2021dec.onnx)")


@pytest.fixture(scope="module")
def sface() -> SFaceEmbedder:
    """The embedder on the verified model file, its session built as the terminal builds it."""
    return SFaceEmbedder(create_session(_sface_path(), blocked_prelu=True))


@pytest.fixture
def sface_stage(require_models: None, data_dir: Path, clock: FixedClock) -> Iterator[FaceStage]:
    """The terminal's own face stage with `[models.embedder] type = "sface"`."""
    _sface_path()
    config = load(DEFAULT_CONFIG)
    models = config.models.model_copy(update={"embedder": EmbedderConfig(type="sface")})
    term = build_terminal(config.model_copy(update={"models": models}), data_dir, clock)
    yield term.face_stage
    term.close()


def test_sface_declares_its_chip_template_and_metric(sface: SFaceEmbedder) -> None:
    assert sface.chip_size == 112 and sface.metric == "cosine"
    assert np.array_equal(sface.template, ARCFACE_TEMPLATE)
    out = sface.embed(np.zeros((0, 112, 112, 3), np.uint8))
    assert out.shape == (0, 128)


def test_sface_refuses_chips_of_the_wrong_size_or_type(sface: SFaceEmbedder) -> None:
    with pytest.raises(ImageError):
        sface.embed(np.zeros((1, 150, 150, 3), np.uint8))
    with pytest.raises(ImageError):
        sface.embed(np.zeros((1, 112, 112, 3), np.float32))  # type: ignore[arg-type]


def test_sface_refuses_a_model_with_another_contract(require_models: None) -> None:
    dlib = create_session(verified_path(MODELS, load_manifest(MODELS).entry("dlib_resnet")))
    with pytest.raises(ModelError, match="SFace input"):
        SFaceEmbedder(dlib)


def test_sface_matches_opencv_face_recognizer_on_the_same_chip(
    sface_stage: FaceStage, clock: FixedClock
) -> None:
    # OpenCV's FaceRecognizerSF runs the same file with its own preprocessing (BGR in, swapped to RGB):
    # equal templates pin our colour order, scaling and layout.
    image = cv2.imread(str(insightface_image("t1.jpg")))
    box = sface_stage.observe(Frame(image, "t1", clock.now()))[0].box
    chip = align_chip(image, np.asarray(box.landmarks, np.float32), 112, ARCFACE_TEMPLATE)
    ours = sface_stage.embedder.embed(chip[np.newaxis])[0]
    reference = cv2.FaceRecognizerSF.create(str(_sface_path()), "")
    theirs = np.asarray(reference.feature(cv2.cvtColor(chip, cv2.COLOR_RGB2BGR))).ravel()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)


def test_sface_face_stage_tells_six_people_apart_and_knows_a_rescaled_copy(
    sface_stage: FaceStage, clock: FixedClock
) -> None:
    image = cv2.imread(str(insightface_image("t1.jpg")))
    faces = sface_stage.observe(Frame(image, "t1", clock.now()))
    assert len(faces) == 6
    templates = np.stack([f.template for f in faces])
    similarity = score_matrix(templates, templates, "cosine")
    strangers = similarity[np.triu_indices(6, k=1)]
    bigger = cv2.resize(image, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)
    again = np.stack([f.template for f in sface_stage.observe(Frame(bigger, "t1x1.5", clock.now()))])
    same = score_matrix(templates, again, "cosine").max(axis=1)
    # the same faces rescaled stay far more alike than any two of the six people
    # (measured: 0.96 against at most 0.37)
    assert same.min() > 0.9 and strangers.max() < 0.5 and same.min() - strangers.max() > 0.4


def test_the_terminal_s_session_gives_the_published_graph_s_templates_on_real_faces(
    sface_stage: FaceStage, shared_dir: Path, clock: FixedClock
) -> None:
    """Weights off the inputs and PRelu rewritten: the templates the threshold and FMR were measured on."""
    asian = shared_dir / "data" / "faces" / "asian"
    images = (
        sorted((asian / "scut").glob("*.jpg"))[:4]
        + sorted((asian / "nuaa" / "client" / "0001").glob("*.jpg"))[:2]
    )
    if len(images) < 6:
        pytest.skip("the East-Asian faces are not in ../shared/data")
    # the published file exactly as it is on disk, no in-memory edit, onnxruntime's default optimisation
    quiet = ort.SessionOptions()
    quiet.log_severity_level = 3  # it warns about every weight listed as an input
    published = ort.InferenceSession(str(_sface_path()), quiet, providers=["CPUExecutionProvider"])
    worst_diff, worst_cosine = 0.0, 1.0
    for path in images:
        image = cv2.imread(str(path))
        box = sface_stage.detector.detect(image)[0]
        chip = align_chip(image, np.asarray(box.landmarks, np.float32), 112, ARCFACE_TEMPLATE)
        ours = sface_stage.embedder.embed(chip[np.newaxis])[0]
        batch = np.ascontiguousarray(chip.transpose(2, 0, 1)[np.newaxis], dtype=np.float32)
        theirs = np.asarray(published.run(["fc1"], {"data": batch})[0][0])
        cosine = float(ours @ theirs / np.linalg.norm(ours) / np.linalg.norm(theirs))
        worst_diff, worst_cosine = (
            max(worst_diff, float(np.abs(ours - theirs).max())),
            min(worst_cosine, cosine),
        )
    # measured: 4.2e-6 at most over 69 SCUT/NUAA faces (norms 4-5); a wrong rewrite moves them by whole units
    assert worst_diff < 2e-5 and worst_cosine > 1 - 1e-6
