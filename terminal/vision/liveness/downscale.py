"""Bounded-size copies of captures: what a liveness attempt keeps, whatever the camera's resolution.

An attempt keeps its captures at a working size (a 640×480 camera's) and, for
identification, the face region with context around it; nothing keeps a reference to a full-size
sensor buffer (a numpy view would keep the whole 4K image alive).
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
from numpy.typing import NDArray

from terminal.domain import DepthFrame, FaceBox, Frame, NirFrame, SensorFrame


def _size(shape: tuple[int, ...], scale: float) -> tuple[int, int]:
    return max(1, round(shape[1] * scale)), max(1, round(shape[0] * scale))


def _area(image: NDArray[np.uint8], size: tuple[int, int]) -> NDArray[np.uint8]:
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def scale_to(shape: tuple[int, ...], side: int) -> float:
    """The factor (≤ 1) that brings an image's longest side down to `side`."""
    return min(1.0, side / max(shape[0], shape[1]))


def downscaled(sensors: SensorFrame, short_side: int) -> tuple[SensorFrame, float]:
    """The capture with RGB, NIR and depth scaled together to shorter side ≤ `short_side`, and the factor.

    The shorter side, not the longer: a 16:9 sensor then shows a face as many pixels high as a 4:3 one
    of the same vertical field of view (the challenge's landmarks need them).
    """
    shape = sensors.rgb.image.shape
    scale = min(1.0, short_side / min(shape[0], shape[1]))
    if scale == 1.0:
        return sensors, 1.0
    size = _size(shape, scale)
    rgb = replace(sensors.rgb, image=_area(sensors.rgb.image, size))
    nir = sensors.nir
    if nir is not None:
        nir = NirFrame(_area(nir.image, size), nir.captured_at, nir.emitter_on)
    depth = sensors.depth
    if depth is not None:
        # Nearest: averaging would blend "no measurement" (0) into real depths at hole edges.
        scaled = cv2.resize(depth.depth_mm, size, interpolation=cv2.INTER_NEAREST)
        depth = DepthFrame(np.asarray(scaled, dtype=np.float32), depth.fx * scale, depth.captured_at)
    return SensorFrame(rgb=rgb, nir=nir, depth=depth), scale


def face_region(frame: Frame, box: FaceBox, margin: float, side: int, carry_face: bool = False) -> Frame:
    """The face with `margin` × its size of context on each side, an owned copy with longest side ≤ `side`.

    With `carry_face` the copy carries `box` moved into its own pixels (Frame.face), so the decision
    embeds the face the challenge tracked instead of detecting it again; not when the copy had to be
    scaled down (the landmarks would be resampled, and detecting again in the copy is as precise).
    """
    height, width = frame.image.shape[:2]
    mx, my = margin * box.width, margin * box.height
    x1, y1 = max(0, int(box.x1 - mx)), max(0, int(box.y1 - my))
    x2, y2 = min(width, int(np.ceil(box.x2 + mx))), min(height, int(np.ceil(box.y2 + my)))
    crop: NDArray[np.uint8] = frame.image[y1:y2, x1:x2]
    scale = scale_to(crop.shape, side)
    # Either way a new buffer: a slice would keep the whole full-resolution image alive.
    crop = _area(crop, _size(crop.shape, scale)) if scale < 1.0 else crop.copy()
    face = moved_box(box, x1, y1) if carry_face and scale == 1.0 else None
    return replace(frame, image=crop, face=face)


def moved_box(box: FaceBox, dx: float, dy: float) -> FaceBox:
    """The box and its landmarks in the pixels of a crop whose top-left corner is (dx, dy)."""
    marks = tuple((x - dx, y - dy) for x, y in box.landmarks)
    return FaceBox(
        box.x1 - dx, box.y1 - dy, box.x2 - dx, box.y2 - dy, box.score,
        (marks[0], marks[1], marks[2], marks[3], marks[4]),
    )  # fmt: skip


def scaled_box(box: FaceBox, factor: float) -> FaceBox:
    """The box and its landmarks multiplied by `factor` (between a frame and its scaled copy)."""
    if factor == 1.0:
        return box
    marks = tuple((x * factor, y * factor) for x, y in box.landmarks)
    return FaceBox(
        box.x1 * factor, box.y1 * factor, box.x2 * factor, box.y2 * factor, box.score,
        (marks[0], marks[1], marks[2], marks[3], marks[4]),
    )  # fmt: skip


def owned_bytes(array: NDArray[np.generic]) -> int:
    """Bytes `array` keeps alive: its own buffer, or the whole buffer it is a view of."""
    root: NDArray[np.generic] = array
    while isinstance(root.base, np.ndarray):
        root = root.base
    return int(root.nbytes)
