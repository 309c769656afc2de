"""Tracking a face through a challenge on real faces, with each detector: a second face fails the attempt.

Frames are composed from two SCUT-FBP5500 photographs (../shared/data/faces/asian/scut) on a grey,
noisy 640×480 background: the patient's face in the middle, and mid-challenge another person's face in
the corner, outside the region the tracker searches on most captures. Skips without ../shared.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from terminal.config import LivenessConfig
from terminal.domain import Frame, SensorFrame
from terminal.errors import ImageError, ModelMissingError
from terminal.pipeline.face_tracker import FULL_EVERY, FaceTracker
from terminal.pipeline.liveness import LivenessStage
from terminal.ports import FaceDetector
from terminal.vision.manifest import load_manifest, verified_path
from terminal.vision.yunet import YuNetDetector
from tests.conftest import MODELS
from tests.fakes import FixedClock

PATIENT, OTHER = "fty1.jpg", "fty1001.jpg"


def _yunet() -> YuNetDetector:
    try:
        return YuNetDetector(verified_path(MODELS, load_manifest(MODELS).entry("yunet")))
    except ModelMissingError:
        pytest.skip("YuNet not provisioned (models/face_detection_yunet_2023mar.onnx)")


def _configured(kind: str) -> FaceDetector:
    """The detector `[models.detector] type = kind` builds, on the verified model files."""
    from terminal.app.registries import build_face_stage
    from terminal.config import DEFAULT_CONFIG, DetectorConfig, load
    from tests.conftest import models_provisioned

    if not models_provisioned():
        pytest.skip("models not provisioned; run `medpay-provision models`")
    config = load(DEFAULT_CONFIG)
    models = config.models.model_copy(update={"detector": DetectorConfig(type=kind)})  # type: ignore[arg-type]
    return build_face_stage(config.model_copy(update={"models": models})).detector


@pytest.fixture(scope="module")
def mtcnn() -> Iterator[FaceDetector]:
    """MTCNN as `type = "mtcnn"` builds it."""
    yield _configured("mtcnn")


@pytest.fixture(scope="module")
def yunet_onet() -> Iterator[FaceDetector]:
    """The shipped default, `type = "yunet"`: YuNet's boxes, O-Net's landmarks and score."""
    yield _configured("yunet")


@pytest.fixture(params=["mtcnn", "yunet", "yunet_raw"])
def detector(request: pytest.FixtureRequest) -> FaceDetector:
    """Each detector the terminal can be configured with that supports regions, and YuNet on its own."""
    if request.param == "yunet_raw":
        return _yunet()
    found: FaceDetector = request.getfixturevalue("yunet_onet" if request.param == "yunet" else "mtcnn")
    return found


@pytest.fixture
def scut(shared_dir: Path) -> Path:
    """The SCUT-FBP5500 photographs, or skip."""
    folder = shared_dir / "data" / "faces" / "asian" / "scut"
    if not (folder / PATIENT).is_file():
        pytest.skip("../shared/data/faces/asian/scut is absent")
    return folder


def _face(folder: Path, name: str, side: int) -> NDArray[np.uint8]:
    image = cv2.imread(str(folder / name))
    assert image is not None
    return np.asarray(cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA), dtype=np.uint8)


def _frame(
    patient: NDArray[np.uint8], seed: int, dx: int = 0, other: NDArray[np.uint8] | None = None
) -> Frame:
    """A 640×480 capture: camera noise on grey, the patient a little off centre by dx, maybe someone else."""
    rng = np.random.default_rng(seed)
    image = rng.integers(118, 139, (480, 640, 3), dtype=np.uint8)
    side = patient.shape[0]
    x, y = 260 - side // 2 + dx, 250 - side // 2
    image[y : y + side, x : x + side] = patient
    if other is not None:
        image[10 : 10 + other.shape[0], 640 - 10 - other.shape[1] : 630] = other
    return Frame(image, "composed", FixedClock().now())


def test_a_second_face_entering_mid_challenge_fails_the_attempt(detector: FaceDetector, scut: Path) -> None:
    clock = FixedClock()
    session = LivenessStage(LivenessConfig(), detector, clock, {}).session(random.Random(3))
    session.start()
    patient, other = _face(scut, PATIENT, 230), _face(scut, OTHER, 150)
    for i in range(7):  # alone in view: the attempt runs (nobody turns, so it cannot pass either)
        outcome = session.feed(SensorFrame(_frame(patient, i, dx=i % 3)))
        assert outcome.status == "continue" and outcome.cue != "no_face"
    fed = 0
    while outcome.status == "continue" and fed < FULL_EVERY:
        outcome = session.feed(SensorFrame(_frame(patient, 100 + fed, dx=fed % 3, other=other)))
        fed += 1
    assert outcome.status == "retry"
    record = session.diagnostics()[0]
    assert not record.live
    assert "more than one face in view" in record.reason


def test_the_tracker_follows_a_real_face_in_its_region_and_a_still_one_gets_identical_landmarks(
    detector: FaceDetector, scut: Path
) -> None:
    patient = _face(scut, PATIENT, 230)
    tracker = FaceTracker(detector)
    moving = [tracker.next(_frame(patient, i, dx=2 * i).image) for i in range(10)]
    assert all(t.box is not None and t.others == 0 for t in moving)
    assert [t.full for t in moving] == [i % FULL_EVERY == 0 for i in range(10)]
    tracker.reset()
    still = _frame(patient, 0).image
    marks = {tracker.next(still).box.landmarks for _ in range(2 * FULL_EVERY)}  # type: ignore[union-attr]
    assert len(marks) == 1


def test_yunet_reports_landmarks_in_mtcnn_order_near_mtcnn_s(mtcnn: FaceDetector, scut: Path) -> None:
    yunet = _yunet()
    image = _frame(_face(scut, PATIENT, 230), 0).image
    (ours,), (theirs,) = yunet.detect(image), mtcnn.detect(image)
    left_eye, right_eye, nose, mouth_left, mouth_right = np.asarray(ours.landmarks)
    assert left_eye[0] < nose[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    iod = float(np.linalg.norm(np.subtract(theirs.landmarks[1], theirs.landmarks[0])))
    gap = np.linalg.norm(np.asarray(ours.landmarks) - np.asarray(theirs.landmarks), axis=1) / iod
    assert float(gap.max()) < 0.3, gap
    assert ours.score >= yunet.min_score


def test_yunet_looks_only_inside_a_region_and_refuses_what_is_not_an_image(scut: Path) -> None:
    yunet = _yunet()
    image = _frame(_face(scut, PATIENT, 230), 0).image
    (face,) = yunet.detect(image)
    (inside,) = yunet.detect_in(image, (100, 80, 420, 420))
    assert abs(inside.x1 - face.x1) < 0.1 * face.width
    assert yunet.detect_in(image, (480, 0, 640, 160)) == []
    assert yunet.detect(np.zeros((480, 640, 3), dtype=np.uint8)) == []
    with pytest.raises(ImageError):
        yunet.detect(np.zeros((480, 640), dtype=np.uint8))
    # a face smaller than min_face_size is not reported
    small = _frame(_face(scut, PATIENT, 60), 0).image
    assert yunet.detect(small) == []


def test_the_shipped_yunet_keeps_yunet_s_box_with_landmarks_next_to_mtcnn_s(
    mtcnn: FaceDetector, yunet_onet: FaceDetector, scut: Path
) -> None:
    """YuNet's own landmarks sit ~12 % of the eye distance from MTCNN's (median), O-Net's on its box ~2 %."""
    image = _frame(_face(scut, PATIENT, 230), 0).image
    (ours,), (theirs,), (raw,) = yunet_onet.detect(image), mtcnn.detect(image), _yunet().detect(image)
    iod = float(np.linalg.norm(np.subtract(theirs.landmarks[1], theirs.landmarks[0])))
    gap = np.linalg.norm(np.asarray(ours.landmarks) - np.asarray(theirs.landmarks), axis=1) / iod
    raw_gap = np.linalg.norm(np.asarray(raw.landmarks) - np.asarray(theirs.landmarks), axis=1) / iod
    assert float(gap.max()) < 0.05 < float(raw_gap.max()), (gap, raw_gap)
    assert (ours.x1, ours.y1, ours.x2, ours.y2) == (raw.x1, raw.y1, raw.x2, raw.y2)  # YuNet's box is kept
    assert ours.score >= 0.9
    assert yunet_onet.detect(_frame(_face(scut, PATIENT, 230), 0).image[:, :200].copy()) == []  # no face
