"""FaceTracker: a region around the last face, the whole frame at least every FULL_EVERY captures."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from terminal.domain import FaceBox
from terminal.pipeline.face_tracker import FULL_EVERY, FaceTracker, track_region
from terminal.ports import Region, RegionDetector

IMAGE = np.zeros((480, 640, 3), dtype=np.uint8)


def _face(cx: float, cy: float, side: float = 160.0) -> FaceBox:
    eye = side / 4
    top, bottom = cy - eye / 2, cy + eye
    marks = ((cx - eye, top), (cx + eye, top), (cx, cy), (cx - eye, bottom), (cx + eye, bottom))
    return FaceBox(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2, 0.99, marks)


class Scene:
    """A region-capable detector over a scripted scene: the faces in view now, found where they are."""

    def __init__(self, *faces: FaceBox) -> None:
        self.faces = list(faces)
        self.calls: list[Region | None] = []  # None: the whole frame

    def detect(self, image: NDArray[np.uint8]) -> list[FaceBox]:
        """Every face in view."""
        self.calls.append(None)
        return list(self.faces)

    def detect_in(self, image: NDArray[np.uint8], region: Region) -> list[FaceBox]:
        """The faces whose centre lies inside the region."""
        self.calls.append(region)
        x1, y1, x2, y2 = region
        return [f for f in self.faces if x1 <= (f.x1 + f.x2) / 2 < x2 and y1 <= (f.y1 + f.y2) / 2 < y2]


class WholeFrameOnly:
    """A detector without region support."""

    def __init__(self, face: FaceBox) -> None:
        self.face = face
        self.calls = 0

    def detect(self, image: NDArray[np.uint8]) -> list[FaceBox]:
        """The one face."""
        self.calls += 1
        return [self.face]


def test_the_scene_fake_is_a_region_detector_and_the_plain_one_is_not() -> None:
    assert isinstance(Scene(), RegionDetector)
    assert not isinstance(WholeFrameOnly(_face(320, 240)), RegionDetector)


def test_the_whole_frame_is_searched_on_the_first_capture_and_every_fifth() -> None:
    scene = Scene(_face(320, 240))
    tracker = FaceTracker(scene)
    full = [tracker.next(IMAGE).full for _ in range(12)]
    assert full == [i % FULL_EVERY == 0 for i in range(12)]
    assert tracker.full_detections == 3
    # every capture measures the face in its region, whole-frame ones included
    assert tracker.region_detections == 12


def test_a_face_that_keeps_still_is_looked_for_in_the_same_region() -> None:
    scene = Scene(_face(320, 240))
    tracker = FaceTracker(scene)
    boxes = {tracker.next(IMAGE).box for _ in range(8)}
    assert boxes == {scene.faces[0]}
    regions = {call for call in scene.calls if call is not None}
    assert regions == {track_region(scene.faces[0], 0.5, IMAGE.shape)}


def test_a_face_lost_in_its_region_is_searched_for_in_the_whole_frame_at_once() -> None:
    scene = Scene(_face(200, 240))
    tracker = FaceTracker(scene)
    tracker.next(IMAGE)
    tracker.next(IMAGE)
    scene.faces = [_face(500, 240)]  # far outside the last face's region
    tracked = tracker.next(IMAGE)
    assert tracked.full and tracked.box == scene.faces[0]
    assert scene.calls[-3:-1] == [track_region(_face(200, 240), 0.5, IMAGE.shape), None]


def test_a_second_face_entering_outside_the_region_is_seen_within_five_captures() -> None:
    scene = Scene(_face(200, 240))
    tracker = FaceTracker(scene)
    tracker.next(IMAGE)
    tracker.next(IMAGE)
    scene.faces.append(_face(520, 120, side=100))  # a photo held up in the corner
    seen = [tracker.next(IMAGE) for _ in range(FULL_EVERY)]
    # outside the region it is invisible until the next whole-frame capture, which comes within five
    assert [t.others for t in seen if not t.full] == [0] * (FULL_EVERY - 1)
    assert [t.others for t in seen if t.full] == [1]
    # the attempt's face is still the one it was following
    assert tracker.next(IMAGE).box == scene.faces[0]


def test_a_second_face_inside_the_region_is_counted_at_once() -> None:
    scene = Scene(_face(320, 240))
    tracker = FaceTracker(scene)
    tracker.next(IMAGE)
    scene.faces.append(_face(380, 250, side=120))
    tracked = tracker.next(IMAGE)
    assert not tracked.full and tracked.others == 1
    assert tracked.box == scene.faces[0]


def test_on_a_whole_frame_capture_the_largest_face_is_the_attempts() -> None:
    small, large = _face(150, 240, side=100), _face(450, 240, side=200)
    tracked = FaceTracker(Scene(small, large)).next(IMAGE)
    assert tracked.full and tracked.box == large and tracked.others == 1


def test_no_face_anywhere_is_no_face() -> None:
    tracked = FaceTracker(Scene()).next(IMAGE)
    assert tracked.box is None and tracked.others == 0 and tracked.full


def test_reset_starts_the_next_attempt_with_the_whole_frame() -> None:
    scene = Scene(_face(320, 240))
    tracker = FaceTracker(scene)
    tracker.next(IMAGE)
    assert not tracker.next(IMAGE).full
    tracker.reset()
    assert tracker.next(IMAGE).full


def test_a_detector_without_regions_runs_on_the_whole_frame_every_time() -> None:
    detector = WholeFrameOnly(_face(320, 240))
    tracker = FaceTracker(detector)
    assert all(tracker.next(IMAGE).full for _ in range(7))
    assert detector.calls == 7


def test_regions_are_the_grown_box_snapped_outwards_and_clipped() -> None:
    box = _face(100, 100, side=160)  # 20..180: grown by 80 on each side, clipped at 0
    assert track_region(box, 0.5, IMAGE.shape) == (0, 0, 272, 272)
    edge = _face(600, 440, side=160)
    assert track_region(edge, 0.5, IMAGE.shape) == (432, 272, 640, 480)


@pytest.mark.parametrize("full_every, margin", [(0, 0.5), (5, -0.1)])
def test_the_tracker_refuses_a_schedule_that_never_searches_the_frame(full_every: int, margin: float) -> None:
    with pytest.raises(ValueError):
        FaceTracker(Scene(), full_every=full_every, margin=margin)
