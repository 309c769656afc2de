"""The synthetic camera into the real liveness stage and identification: no frame is uploaded.

The shipped detector (yunet: YuNet's boxes, O-Net's landmarks) runs everywhere; the VGA decision and the
swung photo run with `type = "mtcnn"` too, which stays selectable.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from terminal.app import Terminal, build_terminal
from terminal.app.demo_faces import demo_presenter
from terminal.config import DEFAULT_CONFIG, CameraSection, DetectorConfig, load
from terminal.demo_data import DEMO_PEOPLE, seed_demo
from terminal.domain import Match
from terminal.pipeline.identify import identify_frames
from terminal.pipeline.liveness import IDENTITY_SIDE, LivenessOutcome, LivenessSession
from terminal.ports import Camera
from terminal.vision.camera import open_camera
from tests.fakes import FixedClock

FRAME_STEP = timedelta(seconds=1 / 15)


def _follow(camera: Camera, session: LivenessSession, clock: FixedClock) -> LivenessOutcome:
    """What the capture loop does: hand the cue to the camera, read, feed, until pass or no attempts left.

    A failed attempt is retried like a patient would (the session's own attempt limit applies): the
    rendered presenter's nod is near the challenge's threshold, as a real patient's small nod is.
    """
    outcome = session.start()
    for _ in range(1200):
        if outcome.status in ("pass", "exhausted"):
            return outcome
        camera.set_cue(outcome.cue)
        outcome = session.feed(camera.read())
        clock.at += FRAME_STEP
    raise AssertionError("the attempt never ended")


def _camera(terminal: Terminal, url: str) -> Camera:
    section = terminal.config.camera.model_copy(update={"url": url})
    assert isinstance(section, CameraSection)
    return open_camera(section, "demo", terminal.clock, lambda kind: demo_presenter(terminal, 2, kind))


@pytest.mark.usefixtures("require_models")
def test_the_configured_synthetic_camera_passes_liveness_and_identifies_at_4k(
    terminal: Terminal, clock: FixedClock
) -> None:
    seed_demo(terminal)
    camera = _camera(terminal, "synthetic://live?width=3840&height=2160")
    session = terminal.liveness_stage.session(random.Random(5))
    assert _follow(camera, session, clock).status == "pass"
    frames = session.identity_frames()
    assert all(max(f.image.shape[:2]) <= IDENTITY_SIDE for f in frames)
    # worked on downscaled: the decision detects each face again in its full-resolution region
    assert all(f.face is None for f in frames)
    decision = identify_frames(terminal.face_stage, terminal.identifier, frames, None)
    assert isinstance(decision.outcome, Match)
    assert decision.outcome.psn_no == DEMO_PEOPLE[2].psn_no


@pytest.fixture(params=["yunet", "mtcnn"])
def any_detector(request: pytest.FixtureRequest, data_dir: Path, clock: FixedClock) -> Iterator[Terminal]:
    """A terminal on the shipped config with `[models.detector] type` set to each selectable detector."""
    config = load(DEFAULT_CONFIG)
    detector = DetectorConfig.model_validate({"type": request.param})
    models = config.models.model_copy(update={"detector": detector})
    terminal = build_terminal(config.model_copy(update={"models": models}), data_dir, clock)
    assert terminal.config.models.detector.type == request.param
    yield terminal
    terminal.close()


@pytest.mark.usefixtures("require_models")
def test_a_vga_camera_identifies_on_the_challenges_own_faces(
    any_detector: Terminal, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 640×480 the challenge's tracked faces are embedded as they are: the decision detects nothing."""
    terminal = any_detector
    seed_demo(terminal)
    camera = _camera(terminal, "synthetic://live?width=640&height=480")
    session = terminal.liveness_stage.session(random.Random(5))
    assert _follow(camera, session, clock).status == "pass"
    frames = session.identity_frames()
    assert frames and all(f.face is not None for f in frames)

    def no_detection(image: object) -> list[object]:
        raise AssertionError("the decision must not detect again")

    monkeypatch.setattr(terminal.face_stage.detector, "detect", no_detection)
    decision = identify_frames(terminal.face_stage, terminal.identifier, frames, None)
    assert isinstance(decision.outcome, Match)
    assert decision.outcome.psn_no == DEMO_PEOPLE[2].psn_no


@pytest.mark.usefixtures("require_models")
def test_the_terminal_builds_its_camera_from_the_shipped_demo_config(
    terminal: Terminal, clock: FixedClock
) -> None:
    camera = terminal.camera
    assert camera is not None
    assert camera.describe() == {
        "kind": "synthetic-live", "url": "synthetic://live", "state": "open", "demo": "yes",
        "nir": "none", "depth": "none",
    }  # fmt: skip
    session = terminal.liveness_stage.session(random.Random(6))
    assert _follow(camera, session, clock).status == "pass"
    terminal.close()
    assert camera.describe()["state"] == "closed"


@pytest.mark.usefixtures("require_models")
def test_a_swung_photo_through_the_same_camera_is_refused(any_detector: Terminal, clock: FixedClock) -> None:
    terminal = any_detector
    camera = _camera(terminal, "synthetic://photo")
    session = terminal.liveness_stage.session(random.Random(5))
    assert _follow(camera, session, clock).status == "exhausted"
    assert not session.passed
    assert len(session.diagnostics()) == terminal.config.liveness.max_attempts
