"""Quality gate: reject faces a payment decision should not rest on."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from terminal.domain import FaceBox
from terminal.vision.align import ARCFACE_CHIP_SIZE, ARCFACE_TEMPLATE, align_chip

MASK_REASON = "lower face covered (a mask?); please lower your mask"

# Regions of the 112×112 ArcFace-aligned chip (eyes at y ≈ 52, nose tip ≈ 72, mouth ≈ 92), (rows, columns).
# Reference skin: both cheeks just under the eyes and the nose bridge between them — above where a
# mask's upper edge sits, and below the fringe of hair that often covers the forehead.
_REFERENCE = (
    (slice(57, 65), slice(26, 42)),
    (slice(57, 65), slice(70, 86)),
    (slice(44, 56), slice(50, 62)),
)
_LOWER = (slice(86, 108), slice(40, 72))  # mouth and chin
_MOUTH = (slice(86, 99), slice(42, 70))  # the band the lips lie in
# A lower-face pixel "looks like this face's skin" within this CIELAB chroma distance of the reference
# and this lightness ratio.
_CHROMA_TOLERANCE = 6.0
_LIGHTNESS_RATIO = (0.6, 1.5)
# A face is taken as masked when both cues agree: hardly any of the mouth and chin looks like the face's
# own skin, and nothing in the mouth band is redder than the cheeks (lips are; blue, white, black and
# green fabric is not). Measured by bench/mask.py on real SCUT and NUAA faces with synthetic masks
# (docs/identity.md): either cue alone refuses some bare faces (beards, open mouths, washed-out webcams).
MAX_LOWER_SKIN = 0.15
MIN_LIP_REDNESS = 1.0


@dataclass(frozen=True)
class LowerFace:
    """Colour cues of the mouth and chin relative to the same face's cheeks (light and skin tone cancel)."""

    skin: float  # share of mouth-and-chin pixels coloured like the cheeks, 0 to 1
    lip_redness: float  # the mouth band's 90th-percentile a* (red-green) minus the cheeks' median a*

    @property
    def covered(self) -> bool:
        """Whether the lower face looks covered (a mask)."""
        return self.skin < MAX_LOWER_SKIN and self.lip_redness < MIN_LIP_REDNESS


def rejection_reason(box: FaceBox, image_width: int, image_height: int, min_face_size: int) -> str | None:
    """Why this face is unusable by its geometry alone (size, frame edge, turn), or None when it passes."""
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


def lower_face(image_bgr: NDArray[np.uint8], box: FaceBox) -> LowerFace:
    """The colour cues of a face's mouth and chin, on a chip aligned by its five landmarks.

    MTCNN still places mouth landmarks on a masked face, which is all the alignment needs.
    """
    landmarks = np.asarray(box.landmarks, dtype=np.float32)
    chip_rgb = align_chip(image_bgr, landmarks, ARCFACE_CHIP_SIZE, ARCFACE_TEMPLATE)
    lab = cv2.cvtColor(chip_rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    # OpenCV's 8-bit Lab: L scaled to 0–255, a and b offset by 128.
    lightness, a, b = lab[..., 0] * (100.0 / 255.0), lab[..., 1] - 128.0, lab[..., 2] - 128.0

    def reference(channel: NDArray[np.float32]) -> float:
        return float(np.median(np.concatenate([channel[r].ravel() for r in _REFERENCE])))

    ref_l, ref_a, ref_b = reference(lightness), reference(a), reference(b)
    chroma = np.hypot(a[_LOWER] - ref_a, b[_LOWER] - ref_b)
    ratio = lightness[_LOWER] / max(ref_l, 1.0)
    low, high = _LIGHTNESS_RATIO
    skin = float(np.mean((chroma < _CHROMA_TOLERANCE) & (ratio > low) & (ratio < high)))
    return LowerFace(skin=skin, lip_redness=float(np.percentile(a[_MOUTH], 90)) - ref_a)


def quality_reason(image_bgr: NDArray[np.uint8], box: FaceBox, min_face_size: int) -> str | None:
    """Why this face is unusable (geometry first, then a covered lower face), or None when it passes."""
    height, width = image_bgr.shape[:2]
    reason = rejection_reason(box, width, height, min_face_size)
    if reason is None and lower_face(image_bgr, box).covered:
        return MASK_REASON
    return reason
