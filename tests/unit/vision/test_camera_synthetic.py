"""The synthetic camera (demo only): follows the cue, never repeats a frame, scales, has depth."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest

from terminal.config import CameraSection
from terminal.vision.camera import SensorCamera, open_camera
from terminal.vision.liveness.render import CANVAS, Presenter
from tests.fakes import FixedClock


def _presenter(kind: Literal["live", "photo"]) -> Presenter:
    """A presenter over a plain textured canvas with hand-placed landmarks (no detector needed)."""
    rng = np.random.default_rng(3)
    canvas = rng.integers(60, 200, (CANVAS[0], CANVAS[1], 3), dtype=np.uint8)
    landmarks = np.array([[280.0, 210.0], [360.0, 210.0], [320.0, 255.0], [290.0, 300.0], [350.0, 300.0]])
    return Presenter(canvas, landmarks, kind, np.random.default_rng(0))


def _camera(url: str, shown: list[Presenter] | None = None, **fields: object) -> SensorCamera:
    """The camera for `url`; the presenter it was given is appended to `shown`."""

    def presenter_for(kind: Literal["live", "photo"]) -> Presenter:
        presenter = _presenter(kind)
        if shown is not None:
            shown.append(presenter)
        return presenter

    section = CameraSection.model_validate({"url": url, **fields})
    return open_camera(section, "demo", FixedClock(), presenter_for)


@pytest.mark.parametrize("kind", ["live", "photo"])
def test_the_presenter_turns_as_the_cue_asks(kind: str) -> None:
    shown: list[Presenter] = []
    camera = _camera(f"synthetic://{kind}", shown)
    (presenter,) = shown
    assert presenter.kind == kind
    camera.set_cue("turn_left")
    for _ in range(5):
        camera.read()
    assert presenter.yaw > 20.0 and presenter.pitch == 0.0
    camera.set_cue("nod")
    for _ in range(6):
        camera.read()
    assert presenter.yaw == 0.0 and presenter.pitch > 20.0
    assert camera.describe()["kind"] == f"synthetic-{kind}"


def test_consecutive_frames_are_never_byte_identical() -> None:
    camera = _camera("synthetic://live")
    first, second = camera.read().rgb.image, camera.read().rgb.image
    assert first.shape == (480, 640, 3)
    assert not np.array_equal(first, second)
    assert float(np.mean(np.abs(first.astype(np.int16) - second.astype(np.int16)))) < 4.0


def test_the_synthetic_camera_can_stand_in_for_a_4k_sensor() -> None:
    camera = _camera("synthetic://photo?width=3840&height=2160")
    frames = [camera.read().rgb.image for _ in range(2)]
    assert frames[0].shape == (2160, 3840, 3) and frames[0].dtype == np.uint8
    assert not np.array_equal(frames[0], frames[1])


def test_synthetic_depth_shows_a_face_when_live_and_a_plane_when_a_photo() -> None:
    spans = {}
    for kind in ("live", "photo"):
        sensors = _camera(f"synthetic://{kind}", depth="synthetic").read()
        assert sensors.depth is not None
        assert sensors.depth.depth_mm.shape == sensors.rgb.image.shape[:2]
        assert sensors.depth.captured_at == sensors.rgb.captured_at
        face = sensors.depth.depth_mm[200:300, 290:350]
        spans[kind] = float(np.percentile(face, 95) - np.percentile(face, 5))
    # A head has centimetres of relief across the face; a held-up photo only sensor noise.
    assert spans["live"] > 15.0 > spans["photo"]
