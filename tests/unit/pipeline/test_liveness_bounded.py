"""Bounded work per attempt (issue 14 §7): a rate gate before any work, a bounded store of captures."""

from __future__ import annotations

import random
from datetime import timedelta

import numpy as np
from numpy.typing import NDArray

from terminal.config import LivenessConfig
from terminal.domain import FaceBox, Frame, SensorFrame
from terminal.pipeline.liveness import KEEP_CAPTURES, WORK_SIDE, LivenessSession, LivenessStage
from terminal.vision.liveness.synthetic import ManualClock

UHD = (2160, 3840)


class CentredFace:
    """A detector that finds one frontal face in the middle of whatever image it is given."""

    def __init__(self) -> None:
        self.calls = 0
        self.sizes: list[tuple[int, ...]] = []

    def detect(self, image: NDArray[np.uint8]) -> list[FaceBox]:
        """One face a quarter of the image high, centred, with a little landmark jitter per call."""
        self.calls += 1
        self.sizes.append(image.shape)
        h, w = image.shape[:2]
        side = h / 4
        cx, cy = w / 2, h / 2
        jitter = 0.5 * (self.calls % 3)
        eye = side / 4
        marks = (
            (cx - eye + jitter, cy - eye / 2),
            (cx + eye + jitter, cy - eye / 2),
            (cx + jitter, cy),
            (cx - eye * 0.8, cy + eye),
            (cx + eye * 0.8, cy + eye),
        )
        return [FaceBox(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2, 0.99, marks)]


def _session(detector: CentredFace, clock: ManualClock, max_fps: float | None) -> LivenessSession:
    # The longest step timeout, so no verdict ends the attempt while frames keep arriving.
    config = LivenessConfig.model_validate({"challenge": {"step_timeout_s": 30}})
    return LivenessStage(config, detector, clock, {}, max_fps=max_fps).session(random.Random(4))


def _feed(
    session: LivenessSession, clock: ManualClock, image: NDArray[np.uint8], count: int, fps: float
) -> None:
    for _ in range(count):
        outcome = session.feed(SensorFrame(Frame(image, "camera", clock.now())))
        assert outcome.status == "continue"
        clock.advance(1.0 / fps)


def test_500_4k_frames_keep_the_attempt_bounded_in_count_and_bytes() -> None:
    detector, clock = CentredFace(), ManualClock()
    session = _session(detector, clock, max_fps=15)
    session.start()
    image = np.random.default_rng(0).integers(0, 255, (*UHD, 3), dtype=np.uint8)
    _feed(session, clock, image, 500, fps=60)
    held = session.footprint()
    assert 0 < held.captures <= KEEP_CAPTURES
    # Each kept capture: a 854×480 working frame plus a face-region identity copy ≤ 640×640 (owned_bytes
    # counts a view as the whole 4K buffer it would keep alive).
    assert held.bytes <= held.captures * (854 * 480 + 640 * 640) * 3
    assert {shape[:2] for shape in detector.sizes} == {(WORK_SIDE, 853)}


def test_frames_faster_than_max_fps_are_dropped_before_detection() -> None:
    detector, clock = CentredFace(), ManualClock()
    session = _session(detector, clock, max_fps=15)
    session.start()
    image = np.zeros((480, 640, 3), dtype=np.uint8)
    _feed(session, clock, image, 120, fps=60)  # two seconds of a 60 fps camera
    assert 29 <= detector.calls <= 31


def test_a_camera_at_max_fps_with_jitter_loses_no_frame() -> None:
    detector, clock = CentredFace(), ManualClock()
    session = _session(detector, clock, max_fps=15)
    session.start()
    image = np.zeros((480, 640, 3), dtype=np.uint8)
    jitter = np.random.default_rng(1).uniform(-0.008, 0.008, 60)
    for step in jitter:
        session.feed(SensorFrame(Frame(image, "camera", clock.now())))
        clock.advance(1.0 / 15 + float(step))
    assert detector.calls == 60


def test_a_clock_set_back_does_not_starve_the_challenge() -> None:
    detector, clock = CentredFace(), ManualClock()
    session = _session(detector, clock, max_fps=15)
    session.start()
    image = np.zeros((480, 640, 3), dtype=np.uint8)
    _feed(session, clock, image, 10, fps=15)
    clock.at -= timedelta(minutes=5)
    _feed(session, clock, image, 10, fps=15)
    assert detector.calls == 20


def test_without_a_rate_every_frame_is_worked_on() -> None:
    detector, clock = CentredFace(), ManualClock()
    session = _session(detector, clock, max_fps=None)
    session.start()
    _feed(session, clock, np.zeros((480, 640, 3), dtype=np.uint8), 40, fps=120)
    assert detector.calls == 40
