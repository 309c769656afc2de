"""Face alignment as pure geometry: a 5-point similarity onto an embedder's chip template, then one warp."""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from terminal.errors import FaceQualityError, ImageError
from terminal.vision.geometry import crop_padded

# Where dlib's own chip extraction (mean face shape, padding 0.25) puts the five points MTCNN reports:
# left eye, right eye, nose tip, left mouth corner, right mouth corner, on a 150×150 chip.
DLIB_CHIP_SIZE = 150
DLIB_CHIP_TEMPLATE: NDArray[np.float64] = np.array(
    [
        [47.55, 46.60],
        [100.48, 46.60],
        [74.01, 76.56],
        [50.42, 103.02],
        [97.61, 103.02],
    ],
    dtype=np.float64,
)
DLIB_CHIP_TEMPLATE.setflags(write=False)

# ArcFace's published 5-point layout on a 112×112 chip (insightface `arcface_dst`), used by SFace and the
# ArcFace family: same point order as MTCNN's landmarks.
ARCFACE_CHIP_SIZE = 112
ARCFACE_TEMPLATE: NDArray[np.float64] = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)
ARCFACE_TEMPLATE.setflags(write=False)

# dlib halves the image (pyramid) while the chip would be more than 2× smaller than the face, then
# interpolates bilinearly; bilinear sampling alone aliases beyond that, so we shrink by area first.
_MAX_DIRECT_SHRINK = 2.0


def similarity_transform(src: NDArray[np.floating], dst: NDArray[np.floating]) -> NDArray[np.float64]:
    """The 2×3 rotation+uniform scale+translation mapping src points onto dst in least squares (Umeyama).

    Never a reflection: a mirrored face must not be aligned into a plausible chip.
    Raises ValueError when src has fewer than two distinct points.
    """
    source = np.asarray(src, dtype=np.float64)
    target = np.asarray(dst, dtype=np.float64)
    if source.ndim != 2 or source.shape[1] != 2 or source.shape != target.shape or source.shape[0] < 2:
        raise ValueError(f"need two matching N×2 point sets (N ≥ 2), got {source.shape} and {target.shape}")
    source_mean = source.mean(axis=0)
    target_mean = target.mean(axis=0)
    source_c = source - source_mean
    target_c = target - target_mean
    source_var = float((source_c**2).sum()) / len(source)
    if source_var <= 1e-12:
        raise ValueError("source points coincide; no similarity is defined")
    covariance = target_c.T @ source_c / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    # Flip the weakest axis when the best orthogonal fit is a reflection (Umeyama's correction).
    sign = 1.0 if np.linalg.det(u) * np.linalg.det(vt) >= 0 else -1.0
    correction = np.array([1.0, sign])
    rotation = u @ np.diag(correction) @ vt
    scale = float(singular @ correction) / source_var
    translation = target_mean - scale * rotation @ source_mean
    return np.hstack([scale * rotation, translation[:, np.newaxis]])


def chip_template(size: int = DLIB_CHIP_SIZE) -> NDArray[np.float64]:
    """The five template points for a size×size chip (dlib's layout, scaled)."""
    return DLIB_CHIP_TEMPLATE * (size / DLIB_CHIP_SIZE)


def align_chip(
    image_bgr: NDArray[np.uint8],
    landmarks: NDArray[np.floating],
    size: int = DLIB_CHIP_SIZE,
    template: NDArray[np.float64] | None = None,
) -> NDArray[np.uint8]:
    """An RGB size×size chip with the five landmarks moved onto the template; outside pixels are black.

    The template is given in the chip's own pixels; without one, dlib's layout scaled to size.
    Raises FaceQualityError when the landmarks are degenerate (all in one place).
    """
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    template = chip_template(size) if template is None else np.asarray(template, dtype=np.float64)
    try:
        matrix = similarity_transform(points, template)
    except ValueError as exc:
        raise FaceQualityError(f"landmarks cannot be aligned: {exc}") from exc
    scale = math.hypot(matrix[0, 0], matrix[1, 0])
    source = image_bgr
    if scale * _MAX_DIRECT_SHRINK < 1.0:
        source, points = _shrunk_region(image_bgr, points, matrix, scale, size)
        matrix = similarity_transform(points, template)
    chip = cv2.warpAffine(
        source,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
    return np.asarray(cv2.cvtColor(chip, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def _shrunk_region(
    image: NDArray[np.uint8],
    points: NDArray[np.float64],
    matrix: NDArray[np.float64],
    scale: float,
    size: int,
) -> tuple[NDArray[np.uint8], NDArray[np.float64]]:
    """The part of the image the chip covers, shrunk by area to about chip scale, and the moved points.

    Only the chip's footprint is shrunk: a 12-megapixel photo must not be resized whole for one face.
    """
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64)
    footprint = corners @ inverse.T
    # One chip pixel of margin so bilinear sampling at the chip's edge has its neighbours.
    margin = 1.0 / scale
    x1, y1 = np.floor(footprint.min(axis=0) - margin).astype(int)
    x2, y2 = np.ceil(footprint.max(axis=0) + margin).astype(int)
    region = crop_padded(image, int(x1), int(y1), int(x2), int(y2))
    width = max(1, round((x2 - x1) * scale))
    height = max(1, round((y2 - y1) * scale))
    shrunk = np.asarray(cv2.resize(region, (width, height), interpolation=cv2.INTER_AREA), dtype=np.uint8)
    factors = np.array([width / (x2 - x1), height / (y2 - y1)])
    # Pixel centres sit at integer coordinates in both images, hence the half-pixel shifts.
    moved = (points - np.array([x1, y1], dtype=np.float64) + 0.5) * factors - 0.5
    return shrunk, moved


def require_chips(chips: object, side: int) -> None:
    """ImageError unless chips is an N×side×side×3 uint8 array, the input every embedder takes."""
    if not isinstance(chips, np.ndarray) or chips.dtype != np.uint8:
        dtype = getattr(chips, "dtype", type(chips).__name__)
        raise ImageError(f"face chips must be a uint8 numpy array, got {dtype}")
    if chips.ndim != 4 or chips.shape[1:] != (side, side, 3):
        raise ImageError(f"face chips must be N×{side}×{side}×3 RGB, got {chips.shape}")
