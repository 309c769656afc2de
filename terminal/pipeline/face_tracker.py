"""Detection across the consecutive captures of one face attempt: near the last face, the whole frame often.

A challenge capture needs the attempt's face and its landmarks, and to know that nobody else came into
view. Between captures a head moves a fraction of its width, so the face is looked for only in a region
around where it was (the last box grown by TRACK_MARGIN face sizes on each side, clipped to the frame);
the whole frame is searched on the attempt's first capture, whenever the face is not found near its last
place, and at least every FULL_EVERY captures, so a second face or a photo entering anywhere in view is
seen within FULL_EVERY captures. A detector without region support is run on the whole frame each time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from terminal.domain import FaceBox
from terminal.ports import FaceDetector, Region, RegionDetector

FULL_EVERY = 5  # captures per whole-frame detection, at most
TRACK_MARGIN = 0.5  # face sizes searched on each side of the last box


def _area(box: FaceBox) -> float:
    return box.width * box.height


def _centre_distance(a: FaceBox, b: FaceBox) -> float:
    return math.hypot((a.x1 + a.x2 - b.x1 - b.x2) / 2, (a.y1 + a.y2 - b.y1 - b.y2) / 2)


def track_region(box: FaceBox, margin: float, shape: tuple[int, ...]) -> Region | None:
    """The box grown by `margin` × its size on each side, clipped to the image; None when nothing is left."""
    height, width = shape[:2]
    mx, my = margin * box.width, margin * box.height
    x1, y1 = max(0, math.floor(box.x1 - mx)), max(0, math.floor(box.y1 - my))
    x2, y2 = min(width, math.ceil(box.x2 + mx)), min(height, math.ceil(box.y2 + my))
    if x2 <= x1 or y2 <= y1:
        return None
    return x1, y1, x2, y2


@dataclass(frozen=True)
class Tracked:
    """One capture's detection: the attempt's face, how many other faces were seen, and how it was found.

    `others` counts every further face the detection saw (in the region or, on a whole-frame detection,
    anywhere in view); `full` says whether the whole frame was searched.
    """

    box: FaceBox | None
    others: int
    full: bool


class FaceTracker:
    """Follows the face of one attempt across its captures; `reset` starts a new attempt."""

    def __init__(
        self, detector: FaceDetector, full_every: int = FULL_EVERY, margin: float = TRACK_MARGIN
    ) -> None:
        if full_every < 1:
            raise ValueError(f"full_every must be at least 1, got {full_every}")
        if margin < 0:
            raise ValueError(f"margin must not be negative, got {margin}")
        self._detector = detector
        self._regions = detector if isinstance(detector, RegionDetector) else None
        self._full_every = full_every
        self._margin = margin
        self._last: FaceBox | None = None
        self._since_full = 0
        self.full_detections = 0
        self.region_detections = 0

    def reset(self) -> None:
        """Forget the face: the next capture is searched whole."""
        self._last = None
        self._since_full = 0

    def next(self, image: NDArray[np.uint8]) -> Tracked:
        """Detect the attempt's face in the next capture."""
        region = self._region(image)
        if region is not None and self._regions is not None:
            faces = self._regions.detect_in(image, region)
            self.region_detections += 1
            if faces:
                self._since_full += 1
                last = self._last
                assert last is not None  # a region exists only around a last face
                # The face nearest its last place is the attempt's; any other in the region is a second.
                box = min(faces, key=lambda f: _centre_distance(f, last))
                return self._keep(Tracked(box, len(faces) - 1, full=False))
        # First capture, the region's turn is over, or the face was lost there: the whole frame.
        faces = self._detector.detect(image)
        self.full_detections += 1
        self._since_full = 0
        box = max(faces, key=_area) if faces else None
        return self._keep(Tracked(box, max(0, len(faces) - 1), full=True))

    def _region(self, image: NDArray[np.uint8]) -> Region | None:
        if self._last is None or self._since_full + 1 >= self._full_every:
            return None
        return track_region(self._last, self._margin, image.shape)

    def _keep(self, tracked: Tracked) -> Tracked:
        self._last = tracked.box
        return tracked
