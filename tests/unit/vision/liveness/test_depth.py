"""Depth check on synthetic face-like, flat, tilted, curved, holed and wrongly-sized surfaces."""

from __future__ import annotations

import numpy as np
import pytest

from terminal.vision.liveness.depth import DepthCheck, cylinder_rms, judge_depth, plane_rms
from terminal.vision.liveness.synthetic import (
    Scene,
    box_from_landmarks,
    curved_depth,
    face_depth,
    flat_depth,
    holed,
    noise_frame,
    project_landmarks,
)
from terminal.vision.liveness.types import DepthFrame, LivenessSample

SCENE = Scene()
BOX = box_from_landmarks(project_landmarks(SCENE, 0.0, 0.0))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(11)


def test_face_like_depth_passes(rng: np.random.Generator) -> None:
    result = judge_depth(face_depth(SCENE, BOX, rng), BOX)
    assert result.status == "pass", result.reason
    assert 55 < result.details["interocular_mm"] < 70


@pytest.mark.parametrize("tilt", [0.0, 20.0, 40.0])
def test_flat_and_tilted_planes_fail(rng: np.random.Generator, tilt: float) -> None:
    result = judge_depth(flat_depth(SCENE, BOX, rng, tilt_deg=tilt), BOX)
    assert result.status == "fail"
    assert "planar" in result.reason


@pytest.mark.parametrize(("radius", "vertical"), [(60.0, True), (90.0, True), (90.0, False), (150.0, True)])
def test_cylinders_fail(rng: np.random.Generator, radius: float, vertical: bool) -> None:
    result = judge_depth(curved_depth(SCENE, BOX, rng, radius_mm=radius, vertical_axis=vertical), BOX)
    assert result.status == "fail"
    assert "planar" in result.reason or "curved" in result.reason


def test_depth_holes_fail(rng: np.random.Generator) -> None:
    result = judge_depth(holed(face_depth(SCENE, BOX, rng), BOX, 0.3, rng), BOX)
    assert result.status == "fail"
    assert "holes" in result.reason


def test_small_face_held_close_fails_on_metric_size(rng: np.random.Generator) -> None:
    # A face of the same pixel size at 250 mm is a 31 mm-between-the-eyes picture: a phone.
    near = face_depth(Scene(distance_mm=250.0), BOX, rng)
    result = judge_depth(near, BOX)
    assert result.status == "fail"
    assert "life-size" in result.reason


def test_relief_at_one_point_is_not_enough(rng: np.random.Generator) -> None:
    # Flat surface plus a single nose-sized bump: the cheeks and mouth stay level with the eyes.
    frame = flat_depth(SCENE, BOX, rng, tilt_deg=25.0)
    depth = frame.depth_mm.copy()
    v, u = np.mgrid[0 : SCENE.height, 0 : SCENE.width]
    nose = BOX.landmarks[2]
    depth -= (30.0 * np.exp(-((u - nose[0]) ** 2 + (v - nose[1]) ** 2) / (2 * 6.0**2))).astype(np.float32)
    assert judge_depth(DepthFrame(depth, frame.fx, frame.captured_at), BOX).status == "fail"


def test_fit_residuals_on_exact_surfaces() -> None:
    x, y = np.meshgrid(np.linspace(-50, 50, 21), np.linspace(-60, 60, 25))
    plane = np.stack([x.ravel(), y.ravel(), (500 + 0.3 * x + 0.1 * y).ravel()], axis=1)
    assert plane_rms(plane) < 1e-6
    cyl = np.stack([x.ravel(), y.ravel(), (500 + 0.004 * (x + y) ** 2).ravel()], axis=1)
    assert cylinder_rms(cyl) < 0.5 < plane_rms(cyl)


def test_check_is_missing_without_depth_and_fails_without_face(rng: np.random.Generator) -> None:
    check = DepthCheck()
    frame = noise_frame(SCENE, rng, face_depth(SCENE, BOX, rng).captured_at)
    assert check.check(LivenessSample((frame,), (BOX,))).status == "missing"
    no_face = LivenessSample((frame,), (None,), depth=(face_depth(SCENE, BOX, rng),))
    assert check.check(no_face).status == "fail"


def test_one_bad_frame_fails_the_sequence(rng: np.random.Generator) -> None:
    frame = noise_frame(SCENE, rng, face_depth(SCENE, BOX, rng).captured_at)
    sample = LivenessSample(
        (frame,), (BOX,), depth=(face_depth(SCENE, BOX, rng), flat_depth(SCENE, BOX, rng))
    )
    assert DepthCheck().check(sample).status == "fail"
