"""Detection across the consecutive captures of one face attempt: near the last face, the whole frame often.

A challenge capture needs the attempt's face and its landmarks, and to know that nobody else came into
view. Between captures a head moves a fraction of its width, so the face is looked for only in a region
around where it was (the last box grown by TRACK_MARGIN face sizes on each side, clipped to the frame);
the whole frame is searched on the attempt's first capture, whenever the face is not found near its last
place, and at least every FULL_EVERY captures, so a second face or a photo entering anywhere in view is
seen within FULL_EVERY captures. A detector without region support is run on the whole frame each time.

The attempt's face is always measured in a region, on whole-frame captures too (they only find it and
count the faces in view): a detector places landmarks a few pixels differently in a crop than in the
whole frame, and the challenge's stillness and parallax tests read landmark motion, so mixing the two
would show a frozen picture as moving. Regions are snapped outwards to a TRACK_GRID pixel grid, so a face
that keeps still is looked for in the very same crop and gets the very same landmarks: the region stays
where it is while the face, grown by half the margin, still lies inside it.
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
TRACK_GRID = 16  # pixels: region corners are snapped outwards to this grid


def _area(box: FaceBox) -> float:
    return box.width * box.height


def _centre_distance(a: FaceBox, b: FaceBox) -> float:
    return math.hypot((a.x1 + a.x2 - b.x1 - b.x2) / 2, (a.y1 + a.y2 - b.y1 - b.y2) / 2)


def _inside(inner: Region | None, outer: Region) -> bool:
    return inner is not None and (
        inner[0] >= outer[0] and inner[1] >= outer[1] and inner[2] <= outer[2] and inner[3] <= outer[3]
    )


def track_region(box: FaceBox, margin: float, shape: tuple[int, ...]) -> Region | None:
    """The box grown by `margin` × its size on each side, clipped to the image; None when nothing is left."""
    height, width = shape[:2]
    mx, my = margin * box.width, margin * box.height
    g = TRACK_GRID
    x1, y1 = max(0, math.floor((box.x1 - mx) / g) * g), max(0, math.floor((box.y1 - my) / g) * g)
    x2, y2 = min(width, math.ceil((box.x2 + mx) / g) * g), min(height, math.ceil((box.y2 + my) / g) * g)
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
        self._region: Region | None = None
        self._since_full = 0
        self.full_detections = 0
        self.region_detections = 0

    def reset(self) -> None:
        """Forget the face: the next capture is searched whole."""
        self._last = None
        self._region = None
        self._since_full = 0

    def next(self, image: NDArray[np.uint8]) -> Tracked:
        """Detect the attempt's face in the next capture."""
        last = self._last
        if last is not None and self._since_full + 1 < self._full_every:
            found = self._near(image, last)
            if found is not None:
                self._since_full += 1
                return self._keep(Tracked(found[0], found[1], full=False))
        # First capture, the region's turn is over, or the face was lost there: the whole frame.
        faces = self._detector.detect(image)
        self.full_detections += 1
        self._since_full = 0
        if not faces:
            return self._keep(Tracked(None, 0, full=True))
        box = max(faces, key=_area)
        # Measured again in its region, like on every other capture (see the module docstring).
        found = self._near(image, box)
        return self._keep(Tracked(found[0] if found else box, len(faces) - 1, full=True))

    def _near(self, image: NDArray[np.uint8], last: FaceBox) -> tuple[FaceBox, int] | None:
        """The face nearest `last` in the region around it and how many others the region holds."""
        if self._regions is None:
            return None
        region = self._region
        if region is None or not _inside(track_region(last, self._margin / 2, image.shape), region):
            region = self._region = track_region(last, self._margin, image.shape)
        if region is None:
            return None
        faces = self._regions.detect_in(image, region)
        self.region_detections += 1
        if not faces:
            return None
        # The face nearest its last place is the attempt's; any other in the region is a second.
        return min(faces, key=lambda f: _centre_distance(f, last)), len(faces) - 1

    def _keep(self, tracked: Tracked) -> Tracked:
        self._last = tracked.box
        return tracked
