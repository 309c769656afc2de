"""Stateless box maths for cascade detectors: suppression, regression, squaring, padded crops.

Boxes are float32 arrays of shape (N, 4) holding x1, y1, x2, y2 in image pixels with half-open
extent: a box covers columns x1 ≤ x < x2, so its width is x2 − x1. (MTCNN's original code used
1-based inclusive corners with "+ 1" widths; half-open 0-based corners give the same areas and
overlaps without the off-by-ones.)
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

Boxes = NDArray[np.float32]
Scores = NDArray[np.float32]
Indices = NDArray[np.intp]
NmsMode = Literal["iou", "min"]


def areas(boxes: Boxes) -> NDArray[np.float32]:
    """Area of each box (zero for degenerate boxes)."""
    widths = np.maximum(boxes[:, 2] - boxes[:, 0], 0.0)
    heights = np.maximum(boxes[:, 3] - boxes[:, 1], 0.0)
    return np.asarray(widths * heights, dtype=np.float32)


def nms(boxes: Boxes, scores: Scores, threshold: float, mode: NmsMode = "iou") -> Indices:
    """Indices of the boxes greedy non-maximum suppression keeps, best score first.

    A box is dropped when its overlap with a better kept box exceeds `threshold`; overlap is
    intersection over union ("iou") or intersection over the smaller area ("min"). "min" also
    removes a small box lying inside a larger one, which IoU would keep.
    """
    if boxes.shape[0] == 0:
        return np.zeros(0, dtype=np.intp)
    area = areas(boxes)
    # Stable sort so equal scores keep their input order: results must not depend on the platform.
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size > 0:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        inter_w = np.maximum(
            np.minimum(boxes[best, 2], boxes[rest, 2]) - np.maximum(boxes[best, 0], boxes[rest, 0]), 0.0
        )
        inter_h = np.maximum(
            np.minimum(boxes[best, 3], boxes[rest, 3]) - np.maximum(boxes[best, 1], boxes[rest, 1]), 0.0
        )
        inter = inter_w * inter_h
        union = area[best] + area[rest] - inter
        denominator = np.minimum(area[best], area[rest]) if mode == "min" else union
        # A zero denominator only happens for degenerate boxes; treat them as not overlapping.
        overlap = np.divide(inter, denominator, out=np.zeros_like(inter), where=denominator > 0)
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.intp)


def regress(boxes: Boxes, offsets: NDArray[np.float32]) -> Boxes:
    """Move each corner by its offset times the box's width or height (MTCNN's bounding-box regression)."""
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    scale = np.stack([widths, heights, widths, heights], axis=1)
    return (boxes + offsets[:, :4] * scale).astype(np.float32)


def square(boxes: Boxes) -> Boxes:
    """Grow each box to a square on its longest side, keeping its centre."""
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(widths, heights)
    cx = boxes[:, 0] + widths * 0.5
    cy = boxes[:, 1] + heights * 0.5
    half = side * 0.5
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=1).astype(np.float32)


def to_pixels(boxes: Boxes) -> NDArray[np.int64]:
    """Snap boxes to whole pixels (floor of each corner), as crops need."""
    return np.floor(boxes).astype(np.int64)


def crop_padded(image: NDArray[np.uint8], x1: int, y1: int, x2: int, y2: int) -> NDArray[np.uint8]:
    """The region [x1, x2) × [y1, y2) of an H×W×C image; parts outside the image are zeros."""
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"empty crop ({x1}, {y1}, {x2}, {y2})")
    height, width = image.shape[:2]
    out = np.zeros((y2 - y1, x2 - x1, *image.shape[2:]), dtype=image.dtype)
    sx1, sy1 = max(x1, 0), max(y1, 0)
    sx2, sy2 = min(x2, width), min(y2, height)
    if sx2 > sx1 and sy2 > sy1:
        out[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = image[sy1:sy2, sx1:sx2]
    return out
