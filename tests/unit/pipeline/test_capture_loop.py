"""The capture loop: camera frames reach the face attempt only while one runs; a lost camera ends it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from terminal.domain import FaceBox, Frame
from terminal.errors import DeviceError, SessionStateError
from terminal.pipeline.capture_loop import CaptureLoop
from terminal.vision.liveness.sources import SensorFrame

AT = datetime(2025, 6, 3, 9, 30)


class Camera:
    """Frames until told to fail; remembers the cues it was given."""

    def __init__(self) -> None:
        self.reads = 0
        self.cues: list[str | None] = []
        self.broken = False

    def read(self) -> SensorFrame:
        if self.broken:
            raise DeviceError("camera unplugged")
        self.reads += 1
        image = np.full((960, 1280, 3), self.reads % 255, dtype=np.uint8)
        return SensorFrame(Frame(image, f"cam#{self.reads}", AT))

    def set_cue(self, cue: str | None) -> None:
        self.cues.append(cue)

    def close(self) -> None:
        self.broken = True

    def describe(self) -> dict[str, str]:
        return {"kind": "test", "url": "test://", "state": "broken" if self.broken else "ok"}


def opener(camera: Camera) -> Any:
    """The loop opens its camera lazily; this one is already open."""
    return lambda: camera


class Sink:
    """A session: identifying or not, a face attempt wanted or not."""

    def __init__(self) -> None:
        self.identifying = True
        self.wanted = False
        self.fed: list[SensorFrame] = []
        self.abandoned: list[str] = []
        self.refuse = False

    def previewing(self) -> bool:
        return self.identifying

    def wants_frames(self) -> bool:
        return self.wanted

    def face_frame(self, sensors: SensorFrame) -> dict[str, Any]:
        if self.refuse:
            raise SessionStateError("the attempt ended")
        self.fed.append(sensors)
        return {"face_checking": True, "challenge": "turn_left"}

    def abandon_face(self, reason: str) -> dict[str, Any]:
        self.abandoned.append(reason)
        self.wanted = False
        return {}


class Detector:
    def detect(self, image: Any) -> list[FaceBox]:
        return [FaceBox(10, 10, 60, 70, 0.99, ((20, 30), (40, 30), (30, 40), (22, 55), (38, 55)))]


def test_no_patient_no_camera() -> None:
    camera, sink = Camera(), Sink()
    sink.identifying = False
    loop = CaptureLoop(opener(camera), sink)
    assert not loop.step() and camera.reads == 0, "the camera is not read while nobody is identifying"


def test_frames_feed_the_attempt_only_while_one_runs_and_the_cue_goes_back() -> None:
    camera, sink = Camera(), Sink()
    loop = CaptureLoop(opener(camera), sink, Detector())
    assert not loop.step() and sink.fed == [], "a preview only: no attempt is running"
    serial, jpeg = loop.preview(0, 0)
    assert serial == 1 and jpeg is not None and jpeg[:2] == b"\xff\xd8"
    sink.wanted = True
    assert loop.step() and len(sink.fed) == 1 and camera.cues == ["turn_left"]


def test_the_preview_is_small_whatever_the_camera() -> None:
    import cv2

    loop = CaptureLoop(opener(Camera()), Sink(), preview_width=320)
    loop.step()
    _, jpeg = loop.preview(0, 0)
    assert jpeg is not None
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[:2] == (240, 320)


def test_a_lost_camera_ends_the_running_attempt_and_comes_back() -> None:
    camera, sink = Camera(), Sink()
    sink.wanted = True
    loop = CaptureLoop(opener(camera), sink)
    camera.broken = True
    assert not loop.step()
    assert sink.abandoned == ["camera: camera unplugged"]
    assert loop.state()["errors"] == 1 and loop.state()["last_error"] == "camera unplugged"
    camera.broken = False
    sink.wanted = True
    assert loop.step() and len(sink.fed) == 1


def test_an_attempt_that_ended_meanwhile_drops_the_frame_quietly() -> None:
    camera, sink = Camera(), Sink()
    sink.wanted, sink.refuse = True, True
    assert not CaptureLoop(opener(camera), sink).step()


def test_the_loop_thread_starts_and_stops() -> None:
    camera, sink = Camera(), Sink()
    sink.identifying = False
    loop = CaptureLoop(opener(camera), sink)
    loop.start()
    assert loop.state()["running"]
    loop.stop()
    assert not loop.state()["running"]
