"""Detection inside one region of an image: the crop a tracked face is looked for in, and back again."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from terminal.domain import FaceBox
from terminal.ports import Region


def clip_region(region: Region, shape: tuple[int, ...]) -> Region:
    """`region` clipped to an image of `shape`; ValueError when nothing of it is left."""
    height, width = shape[:2]
    x1, y1 = max(0, region[0]), max(0, region[1])
    x2, y2 = min(width, region[2]), min(height, region[3])
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"region {region} lies outside a {width}×{height} image")
    return x1, y1, x2, y2


def shifted(box: FaceBox, dx: float, dy: float) -> FaceBox:
    """The box and its landmarks moved by (dx, dy) pixels (from a crop's coordinates to the image's)."""
    marks = tuple((x + dx, y + dy) for x, y in box.landmarks)
    return FaceBox(
        box.x1 + dx, box.y1 + dy, box.x2 + dx, box.y2 + dy, box.score,
        (marks[0], marks[1], marks[2], marks[3], marks[4]),
    )  # fmt: skip


def detect_in_region(
    detect: Callable[[NDArray[np.uint8]], list[FaceBox]], image: NDArray[np.uint8], region: Region
) -> list[FaceBox]:
    """Run `detect` on the region's crop and report its faces in the whole image's coordinates."""
    x1, y1, x2, y2 = clip_region(region, image.shape)
    # A contiguous copy: the detectors' colour conversion and resizing run faster on one.
    crop = np.ascontiguousarray(image[y1:y2, x1:x2])
    return [shifted(box, x1, y1) for box in detect(crop)]
