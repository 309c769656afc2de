"""Tracking a face through a challenge on real faces, with MTCNN and YuNet: a second face fails the attempt.

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


@pytest.fixture(scope="module")
def mtcnn() -> Iterator[FaceDetector]:
    """The shipped MTCNN detector on the verified model files."""
    from terminal.app.registries import build_face_stage
    from terminal.config import DEFAULT_CONFIG, load
    from tests.conftest import models_provisioned

    if not models_provisioned():
        pytest.skip("models not provisioned; run `medpay-provision models`")
    yield build_face_stage(load(DEFAULT_CONFIG)).detector


@pytest.fixture(params=["mtcnn", "yunet"])
def detector(request: pytest.FixtureRequest) -> FaceDetector:
    """Each detector the terminal can be configured with that supports regions."""
    if request.param == "yunet":
        return _yunet()
    found: FaceDetector = request.getfixturevalue("mtcnn")
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
