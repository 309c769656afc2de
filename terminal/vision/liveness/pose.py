"""Head pose and planarity from the five landmarks: stateless numpy geometry."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

# A mean face in units of the inter-ocular distance: x to image right, y down, z away from the camera.
# Only the nose tip leaves the eye/mouth plane, which is what makes yaw and pitch observable.
FACE_MODEL = np.array(
    [
        [-0.5, 0.0, 0.0],  # left eye (image left)
        [0.5, 0.0, 0.0],  # right eye
        [0.0, 0.55, -0.55],  # nose tip, in front of the face plane
        [-0.4, 1.05, 0.05],  # left mouth corner
        [0.4, 1.05, 0.05],  # right mouth corner
    ],
    dtype=np.float64,
)


@dataclass(frozen=True)
class HeadPose:
    """Yaw (+ = nose towards image right) and pitch (+ = nose down), in degrees."""

    yaw: float
    pitch: float


def head_pose(points: NDArray[np.float64]) -> HeadPose:
    """Weak-perspective fit of the mean face to five landmarks → yaw and pitch."""
    if points.shape != (5, 2) or not np.all(np.isfinite(points)):
        raise ValueError(f"expected 5×2 finite landmarks, got {points.shape}")
    model = FACE_MODEL - FACE_MODEL.mean(axis=0)
    image = points - points.mean(axis=0)
    # Least-squares 2×3 affine camera: image ≈ model @ A.T
    solution, *_ = np.linalg.lstsq(model, image, rcond=None)
    a = solution.T
    r1 = a[0] / np.linalg.norm(a[0])
    r2 = a[1] - r1 * float(r1 @ a[1])
    r2 = r2 / np.linalg.norm(r2)
    # The z components of the rotation's first two rows are how far the face's depth axis tilts
    # towards image x (yaw) and image y (pitch).
    yaw = math.degrees(math.asin(float(np.clip(-r1[2], -1.0, 1.0))))
    pitch = math.degrees(math.asin(float(np.clip(-r2[2], -1.0, 1.0))))
    return HeadPose(yaw=yaw, pitch=pitch)


def interocular(points: NDArray[np.float64]) -> float:
    """Distance between the two eye landmarks in pixels."""
    return float(np.linalg.norm(points[1] - points[0]))


def nose_parallax(reference: NDArray[np.float64], moved: NDArray[np.float64]) -> float:
    """How far the nose leaves the plane of eyes and mouth corners between two views.

    The homography through the four (nearly coplanar) eye and mouth points predicts where a nose lying
    in their plane would be; a photo's nose is in that plane, a real nose is ~2 cm in front of it.
    Returned in units of the inter-ocular distance so it does not depend on the face size.
    """
    corners = [0, 1, 3, 4]
    src = reference[corners].astype(np.float32)
    dst = moved[corners].astype(np.float32)
    try:
        h = cv2.getPerspectiveTransform(src, dst)
    except cv2.error:
        return 0.0
    nose = np.array([reference[2, 0], reference[2, 1], 1.0])
    projected = h @ nose
    if abs(projected[2]) < 1e-9:
        return 0.0
    predicted = projected[:2] / projected[2]
    scale = max(interocular(moved), 1e-6)
    return float(np.linalg.norm(predicted - moved[2]) / scale)
