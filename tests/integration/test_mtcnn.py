"""Our MTCNN cascade on the real ONNX models and real photographs."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from numpy.typing import NDArray

from terminal.domain import FaceBox
from terminal.errors import ImageError, ModelError
from terminal.vision.mtcnn import MtcnnDetector
from terminal.vision.runtime import create_session

MODELS = Path(__file__).resolve().parents[2] / "models"
NETS = ("mtcnn_pnet.onnx", "mtcnn_rnet.onnx", "mtcnn_onet.onnx")
DEEPFACE = Path("/work/shared/data/faces/deepface")

Sessions = tuple[ort.InferenceSession, ort.InferenceSession, ort.InferenceSession]


def _image(name: str) -> NDArray[np.uint8]:
    import insightface

    path = os.path.join(os.path.dirname(insightface.__file__), "data", "images", name)
    image = cv2.imread(path)
    assert image is not None, f"{path} is missing from the insightface wheel"
    return np.asarray(image, dtype=np.uint8)


@pytest.fixture(scope="module")
def sessions() -> Sessions:
    """The three provisioned networks, or skip when they are absent."""
    paths = [MODELS / name for name in NETS]
    if not all(path.is_file() for path in paths):
        pytest.skip("run medpay-provision models")
    # as the terminal builds them (terminal/app/registries.py): PRelu in onnxruntime's blocked layout
    pnet, rnet, onet = (create_session(path, 1, blocked_prelu=True) for path in paths)
    return pnet, rnet, onet


def test_the_blocked_prelu_sessions_find_what_the_published_graphs_find(sessions: Sessions) -> None:
    """The in-memory PRelu rewrite leaves boxes, scores and landmarks as the published nets give them."""
    published = MtcnnDetector(*(create_session(MODELS / name, 1) for name in NETS))
    rewritten = MtcnnDetector(*sessions)
    compared = 0
    for name in ("t1.jpg", "Tom_Hanks_54745.png"):
        image = _image(name)
        expected, got = published.detect(image), rewritten.detect(image)
        assert len(got) == len(expected) >= 1, name
        for a, b in zip(sorted(expected, key=lambda f: f.x1), sorted(got, key=lambda f: f.x1), strict=True):
            assert np.allclose([a.x1, a.y1, a.x2, a.y2], [b.x1, b.y1, b.x2, b.y2], atol=1e-3), name
            assert np.allclose(a.landmarks, b.landmarks, atol=1e-3), name
            assert abs(a.score - b.score) < 1e-5, name
            compared += 1
    assert compared == 7  # six people in t1.jpg, one in the other


@pytest.fixture(scope="module")
def detector(sessions: Sessions) -> MtcnnDetector:
    """The detector with its payment defaults (min face 80 px, final score ≥ 0.95)."""
    return MtcnnDetector(*sessions)


def _assert_plausible(face: FaceBox) -> None:
    """Landmarks inside the box, eyes above nose above mouth, left on the left."""
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    for x, y in face.landmarks:
        assert face.x1 <= x <= face.x2 and face.y1 <= y <= face.y2, (face, (x, y))
    assert left_eye[1] < mouth_left[1] and right_eye[1] < mouth_right[1]
    assert (left_eye[1] + right_eye[1]) / 2 < nose[1] < (mouth_left[1] + mouth_right[1]) / 2
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]


def _iou(a: FaceBox, b: FaceBox) -> float:
    w = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    h = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = w * h
    return inter / (a.width * a.height + b.width * b.height - inter)


def test_finds_exactly_the_six_faces_of_t1(sessions: Sessions) -> None:
    # t1.jpg is 1280×886 with faces 90–150 px across; 40 px leaves margin below the smallest.
    detector = MtcnnDetector(*sessions, min_face_size=40)
    faces = detector.detect(_image("t1.jpg"))
    assert len(faces) == 6
    scores = [face.score for face in faces]
    assert scores == sorted(scores, reverse=True)
    assert min(scores) >= 0.95
    for face in faces:
        _assert_plausible(face)
        assert 80 <= face.width <= 160 and 100 <= face.height <= 170
    for a, b in itertools.combinations(faces, 2):
        assert _iou(a, b) < 0.1


def test_finds_the_six_faces_of_t1_at_the_kiosk_default_too(detector: MtcnnDetector) -> None:
    assert len(detector.detect(_image("t1.jpg"))) == 6


def test_finds_exactly_one_face_in_the_tom_hanks_crop(detector: MtcnnDetector) -> None:
    # The image is 112×112 with a face of about 85 px: just above the default min_face_size of 80.
    faces = detector.detect(_image("Tom_Hanks_54745.png"))
    assert len(faces) == 1
    assert faces[0].score >= 0.95
    _assert_plausible(faces[0])


def test_landmarks_are_in_image_pixels_and_follow_a_rescale(detector: MtcnnDetector) -> None:
    image = _image("Tom_Hanks_54745.png")
    small = detector.detect(image)[0]
    enlarged = cv2.resize(image, None, fx=2.5, fy=2.5, interpolation=cv2.INTER_CUBIC)
    big = detector.detect(np.asarray(enlarged, dtype=np.uint8))[0]
    # The cascade is not exactly scale-covariant (different pyramid levels): allow 4% of the face.
    tolerance = 0.04 * big.width
    for (xs, ys), (xb, yb) in zip(small.landmarks, big.landmarks, strict=True):
        assert abs(xs * 2.5 - xb) < tolerance and abs(ys * 2.5 - yb) < tolerance


@pytest.mark.parametrize("kind", ["black", "grey", "noise"])
def test_an_image_without_a_face_gives_no_face(sessions: Sessions, kind: str) -> None:
    if kind == "noise":
        image = np.random.default_rng(3).integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    else:
        image = np.full((480, 640, 3), 0 if kind == "black" else 128, dtype=np.uint8)
    # The smallest sensible face size searches the most windows: the hardest case for false alarms.
    assert MtcnnDetector(*sessions, min_face_size=20).detect(image) == []


def test_an_image_smaller_than_the_face_size_gives_no_face(detector: MtcnnDetector) -> None:
    assert detector.detect(np.full((40, 60, 3), 128, dtype=np.uint8)) == []


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((100, 0, 3), np.uint8),
        np.zeros((100, 100), np.uint8),
        np.zeros((100, 100, 4), np.uint8),
        np.zeros((100, 100, 3), np.float32),
    ],
    ids=["empty", "zero-width", "grey", "bgra", "float"],
)
def test_bad_input_is_an_image_error(detector: MtcnnDetector, image: NDArray[np.generic]) -> None:
    with pytest.raises(ImageError):
        detector.detect(image)  # type: ignore[arg-type]


def test_sessions_in_the_wrong_order_are_refused(sessions: Sessions) -> None:
    pnet, rnet, onet = sessions
    with pytest.raises(ModelError, match="P-Net"):
        MtcnnDetector(rnet, pnet, onet)
    with pytest.raises(ModelError, match="O-Net"):
        MtcnnDetector(pnet, rnet, rnet)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_face_size": 8},
        {"thresholds": (0.6, 0.7)},
        {"thresholds": (0.6, 1.5, 0.7)},
        {"scale_factor": 1.0},
    ],
)
def test_nonsense_parameters_are_refused(sessions: Sessions, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        MtcnnDetector(*sessions, **kwargs)  # type: ignore[arg-type]


@pytest.mark.shared
def test_finds_a_face_in_nearly_every_deepface_photo(detector: MtcnnDetector) -> None:
    if not DEEPFACE.is_dir():
        pytest.skip(f"{DEEPFACE} is absent on this machine")
    paths = sorted(p for p in DEEPFACE.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not paths:
        pytest.skip(f"{DEEPFACE} holds no photos")
    found = 0
    for path in paths:
        image = cv2.imread(str(path))
        assert image is not None, path
        faces = detector.detect(np.asarray(image, dtype=np.uint8))
        found += bool(faces)
        for face in faces:
            _assert_plausible(face)
    # 64 of 64 at the time of writing; allow a few misses for other OpenCV builds.
    assert found >= 0.95 * len(paths)
