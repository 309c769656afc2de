"""A frame that carries its face (the liveness challenge's) is gated and embedded without detecting again."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from numpy.typing import NDArray

from terminal.domain import FaceBox, Frame
from terminal.errors import NoFaceError
from terminal.pipeline.face import FaceStage
from terminal.vision.align import ARCFACE_CHIP_SIZE, ARCFACE_TEMPLATE
from terminal.vision.liveness.downscale import face_region, moved_box

AT = datetime(2026, 12, 6, 9, 0)
# a 120-px face centred at (320, 240): eyes, nose, mouth corners where a frontal face has them
MARKS = ((290.0, 220.0), (350.0, 220.0), (320.0, 250.0), (295.0, 280.0), (345.0, 280.0))
FACE = FaceBox(260.0, 170.0, 380.0, 310.0, 0.99, MARKS)


class CountingDetector:
    """Finds FACE where the identity region of a whole frame holds it, and counts how often it was asked."""

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image: NDArray[np.uint8]) -> list[FaceBox]:
        self.calls += 1
        return [moved_box(FACE, 200, 100)]


class SumEmbedder:
    """A template from the chip's pixels, so the test sees which face was aligned."""

    chip_size = ARCFACE_CHIP_SIZE
    template = ARCFACE_TEMPLATE
    dim = 4
    metric = "cosine"
    model_id = "test"

    def embed(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        flat = chips.reshape(len(chips), -1).astype(np.float32)
        return np.stack([flat.mean(axis=1), flat.std(axis=1), flat[:, 0], flat[:, -1]], axis=1)


def _image() -> NDArray[np.uint8]:
    rng = np.random.default_rng(3)
    return rng.integers(40, 220, size=(480, 640, 3), dtype=np.uint8)


def test_a_carried_face_is_not_detected_again_and_embeds_as_the_detected_one() -> None:
    detector = CountingDetector()
    stage = FaceStage(detector, SumEmbedder(), min_face_size=80)  # type: ignore[arg-type]
    frame = Frame(_image(), "capture", AT)
    detected = stage.observe_primary(face_region(frame, FACE, 0.5, 640))
    assert detector.calls == 1
    carried = face_region(frame, FACE, 0.5, 640, carry_face=True)
    assert carried.face is not None
    got = stage.observe_primary(carried)
    assert detector.calls == 1, "the challenge's face is used, not detected again"
    # the same face, moved into the crop, aligns to the same chip as detecting it in the crop
    assert got.box == carried.face
    np.testing.assert_array_equal(got.template, detected.template)


def test_a_carried_face_still_passes_the_quality_gate() -> None:
    stage = FaceStage(CountingDetector(), SumEmbedder(), min_face_size=200)  # type: ignore[arg-type]
    carried = face_region(Frame(_image(), "capture", AT), FACE, 0.5, 640, carry_face=True)
    with pytest.raises(NoFaceError):
        stage.observe_primary(carried)


def test_the_face_is_carried_only_when_the_region_was_not_rescaled() -> None:
    frame = Frame(_image(), "capture", AT)
    kept = face_region(frame, FACE, 0.5, 640, carry_face=True)
    assert kept.face == moved_box(FACE, 200, 100)
    assert kept.face is not None and kept.face.landmarks[0] == (90.0, 120.0)
    assert face_region(frame, FACE, 0.5, 640).face is None
    # a region longer than `side` is scaled down: its face would be resampled, so it is detected again
    assert face_region(frame, FACE, 0.5, 100, carry_face=True).face is None
