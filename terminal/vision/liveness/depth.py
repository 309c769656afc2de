"""Depth check for structured-light / ToF cameras: a face has relief no plane or cylinder explains.

Depth is registered to the RGB grid, so the RGB face box and landmarks index it directly. Layered
tests, because each alone is beaten by something: a tilted phone beats one relief ratio, a curved
print beats a plane fit, a small picture held close beats both unless the metric size is checked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from terminal.domain import FaceBox
from terminal.vision.liveness.types import CheckResult, DepthFrame, LivenessSample, box_region, landmark_array

NAME = "depth"


@dataclass(frozen=True)
class DepthConfig:
    """Thresholds of the depth check (millimetres unless said otherwise)."""

    max_hole_fraction: float = 0.15
    min_plane_rms: float = 4.0
    min_cylinder_rms: float = 2.5
    min_nose_relief: float = 8.0  # nose in front of eyes, cheeks and mouth corners (each side)
    min_interocular_mm: float = 45.0  # children and small adults included
    max_interocular_mm: float = 80.0
    min_distance_mm: float = 200.0
    max_distance_mm: float = 1500.0


def _metric_points(
    depth: NDArray[np.float32], region: tuple[int, int, int, int], fx: float
) -> NDArray[np.float64]:
    """Valid pixels of a region as N×3 (x mm, y mm, z mm), relative to the region's centre ray."""
    x1, y1, x2, y2 = region
    patch = depth[y1:y2, x1:x2].astype(np.float64)
    vs, us = np.nonzero(patch > 0)
    z = patch[vs, us]
    cu, cv = (x2 - x1) / 2, (y2 - y1) / 2
    return np.stack([(us - cu) * z / fx, (vs - cv) * z / fx, z], axis=1)


def _lstsq_rms(design: NDArray[np.float64], z: NDArray[np.float64]) -> float:
    coef, *_ = np.linalg.lstsq(design, z, rcond=None)
    return float(np.sqrt(np.mean((design @ coef - z) ** 2)))


def plane_rms(points: NDArray[np.float64]) -> float:
    """RMS distance (mm, along z) of points from their best plane z = a + bx + cy."""
    x, y, z = points.T
    return _lstsq_rms(np.stack([np.ones_like(x), x, y], axis=1), z)


def cylinder_rms(points: NDArray[np.float64], angles: int = 12) -> float:
    """Smallest RMS over cylinders bent about any in-plane axis: z = a + bx + cy + d·t², t across the axis."""
    x, y, z = points.T
    best = math.inf
    for k in range(angles):
        phi = math.pi * k / angles
        t = x * math.cos(phi) + y * math.sin(phi)
        best = min(best, _lstsq_rms(np.stack([np.ones_like(x), x, y, t * t], axis=1), z))
    return best


def _sample(depth: NDArray[np.float32], x: float, y: float, radius: int) -> float:
    """Median valid depth in a small window (0 when there is none)."""
    h, w = depth.shape
    xi, yi = round(x), round(y)
    win = depth[max(yi - radius, 0) : min(yi + radius + 1, h), max(xi - radius, 0) : min(xi + radius + 1, w)]
    valid = win[win > 0]
    return float(np.median(valid)) if valid.size else 0.0


def relief_points(box: FaceBox) -> dict[str, tuple[float, float]]:
    """Named probe points: the five landmarks plus both cheeks (below the eyes, outside the nose)."""
    p = landmark_array(box)
    left_cheek = p[0] + 0.55 * (p[3] - p[0]) - 0.15 * (p[1] - p[0])
    right_cheek = p[1] + 0.55 * (p[4] - p[1]) + 0.15 * (p[1] - p[0])
    return {
        "eye_l": (p[0, 0], p[0, 1]),
        "eye_r": (p[1, 0], p[1, 1]),
        "nose": (p[2, 0], p[2, 1]),
        "mouth_l": (p[3, 0], p[3, 1]),
        "mouth_r": (p[4, 0], p[4, 1]),
        "cheek_l": (float(left_cheek[0]), float(left_cheek[1])),
        "cheek_r": (float(right_cheek[0]), float(right_cheek[1])),
    }


def judge_depth(frame: DepthFrame, box: FaceBox, cfg: DepthConfig | None = None) -> CheckResult:
    """Pass a depth frame whose face region has face-like relief at a plausible metric size."""
    cfg = cfg or DepthConfig()
    depth = frame.depth_mm
    region = box_region(box, depth.shape)
    x1, y1, x2, y2 = region
    area = (x2 - x1) * (y2 - y1)
    if area == 0:
        return CheckResult.failed(NAME, 0.0, "face box outside the depth frame")
    valid = depth[y1:y2, x1:x2] > 0
    holes = 1.0 - float(np.count_nonzero(valid)) / area
    details: dict[str, float] = {"hole_fraction": holes}
    if holes > cfg.max_hole_fraction:
        return CheckResult.failed(NAME, 0.0, f"depth holes cover {holes:.0%} of the face", details)
    radius = max(1, int((x2 - x1) * 0.03))
    probes = {k: _sample(depth, x, y, radius) for k, (x, y) in relief_points(box).items()}
    if any(v <= 0 for v in probes.values()):
        return CheckResult.failed(NAME, 0.0, "no depth at a landmark", details)
    distance = probes["nose"]
    iod_mm = float(np.linalg.norm(landmark_array(box)[1] - landmark_array(box)[0])) * distance / frame.fx
    details.update({"distance_mm": distance, "interocular_mm": iod_mm})
    if not cfg.min_distance_mm <= distance <= cfg.max_distance_mm:
        return CheckResult.failed(NAME, 0.0, f"face at {distance:.0f} mm is out of range", details)
    if not cfg.min_interocular_mm <= iod_mm <= cfg.max_interocular_mm:
        return CheckResult.failed(
            NAME, 0.0, f"face is {iod_mm:.0f} mm between the eyes: not life-size", details
        )
    points = _metric_points(depth, region, frame.fx)
    # Fits on the central part of the box: the box edges catch background and hair.
    inner = points[(np.abs(points[:, 0]) < 0.35 * (x2 - x1) * distance / frame.fx)]
    plane = plane_rms(inner)
    cylinder = cylinder_rms(inner)
    details.update({"plane_rms_mm": plane, "cylinder_rms_mm": cylinder})
    if plane < cfg.min_plane_rms:
        return CheckResult.failed(
            NAME, plane / cfg.min_plane_rms, f"planar surface (rms {plane:.1f} mm)", details
        )
    if cylinder < cfg.min_cylinder_rms:
        return CheckResult.failed(
            NAME, cylinder / cfg.min_cylinder_rms, f"simply curved surface (rms {cylinder:.1f} mm)", details
        )
    # Relief at several points, each side separately: a tilted flat phone can fake one difference,
    # never all of them with the nose in front on both sides.
    nose = probes["nose"]
    margins = {k: probes[k] - nose for k in ("eye_l", "eye_r", "cheek_l", "cheek_r", "mouth_l", "mouth_r")}
    details.update({f"relief_{k}_mm": v for k, v in margins.items()})
    weakest = min(margins.values())
    if weakest < cfg.min_nose_relief:
        worst = min(margins, key=lambda k: margins[k])
        return CheckResult.failed(
            NAME,
            max(weakest, 0.0) / cfg.min_nose_relief,
            f"nose only {weakest:.1f} mm in front of {worst}",
            details,
        )
    return CheckResult.passed(NAME, min(1.0, weakest / (2 * cfg.min_nose_relief)), details)


class DepthCheck:
    """LivenessCheck `depth`: every delivered depth frame must pass (one bad frame fails)."""

    name = NAME

    def __init__(self, cfg: DepthConfig | None = None) -> None:
        self.cfg = cfg or DepthConfig()

    def check(self, sample: LivenessSample) -> CheckResult:
        """Judge the depth frames against the RGB face box."""
        box = sample.primary_box
        if not sample.depth:
            return CheckResult.missing(NAME, "no depth frame")
        if box is None:
            return CheckResult.failed(NAME, 0.0, "no RGB face to locate in depth")
        results = [judge_depth(frame, box, self.cfg) for frame in sample.depth]
        return min(results, key=lambda r: (r.status == "pass", r.score))
