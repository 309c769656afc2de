"""Quality gate: reject faces a payment decision should not rest on."""

from __future__ import annotations

import math

from terminal.domain import FaceBox


def rejection_reason(box: FaceBox, image_width: int, image_height: int, min_face_size: int) -> str | None:
    """Why this face is unusable, or None when it passes."""
    if min(box.width, box.height) < min_face_size:
        return f"face smaller than {min_face_size} px; step closer"
    for x, y in box.landmarks:
        if not (0 <= x < image_width and 0 <= y < image_height):
            return "face is cut off by the frame edge"
    (lx, ly), (rx, ry) = box.landmarks[0], box.landmarks[1]
    eye_distance = math.hypot(rx - lx, ry - ly)
    # Eyes closer than a fifth of the box width means a strongly turned head: alignment would warp it.
    if eye_distance < 0.2 * box.width:
        return "face turned too far; look at the camera"
    return None
