"""The kiosk's camera preview: a small JPEG of what the terminal's camera sees, the face box drawn."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from terminal.domain import FaceBox


def downscale(image: NDArray[np.uint8], width: int) -> NDArray[np.uint8]:
    """The image at most `width` pixels wide (a copy; never enlarged)."""
    height, current = image.shape[:2]
    if current <= width:
        return image.copy()
    size = (width, max(1, round(height * width / current)))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def preview_jpeg(image: NDArray[np.uint8], box: FaceBox | None, quality: int = 70) -> bytes:
    """A JPEG of the (already downscaled) image with the face box, if any, drawn in green."""
    canvas = image.copy()
    if box is not None:
        top_left = (round(box.x1), round(box.y1))
        bottom_right = (round(box.x2), round(box.y2))
        cv2.rectangle(canvas, top_left, bottom_right, (80, 200, 80), 2)
    ok, data = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("cannot encode the preview frame")
    return bytes(data)
