"""Similarity transform and chip alignment on fixed points."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from terminal.errors import FaceQualityError
from terminal.vision.align import (
    ARCFACE_CHIP_SIZE,
    ARCFACE_TEMPLATE,
    DLIB_CHIP_TEMPLATE,
    align_chip,
    chip_template,
    similarity_transform,
)


def _apply(matrix: np.ndarray, points: np.ndarray) -> NDArray[np.float64]:
    return np.asarray(points @ matrix[:, :2].T + matrix[:, 2], dtype=np.float64)


def _similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(angle_deg)
    c, s = scale * math.cos(a), scale * math.sin(a)
    return np.array([[c, -s, tx], [s, c, ty]])


def test_template_maps_onto_itself_by_the_identity() -> None:
    matrix = similarity_transform(DLIB_CHIP_TEMPLATE, DLIB_CHIP_TEMPLATE)
    assert np.allclose(matrix, [[1, 0, 0], [0, 1, 0]], atol=1e-12)


@pytest.mark.parametrize(
    ("angle", "scale", "tx", "ty"), [(23.0, 0.37, -120.5, 48.0), (-170.0, 2.5, 3.0, 900.0)]
)
def test_known_rotation_scale_translation_is_recovered_exactly(
    angle: float, scale: float, tx: float, ty: float
) -> None:
    truth = _similarity(angle, scale, tx, ty)
    src = np.array([[310.0, 220.0], [372.0, 214.0], [340.0, 260.0], [318.0, 292.0], [366.0, 288.0]])
    recovered = similarity_transform(src, _apply(truth, src))
    assert np.allclose(recovered, truth, atol=1e-9)


def test_least_squares_fit_averages_symmetric_noise() -> None:
    # Moving two points apart symmetrically about their centre changes nothing but scale, by a known amount.
    src = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])
    dst = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, -1.0], [0.0, 1.0]])
    matrix = similarity_transform(src, dst)
    assert np.allclose(matrix, [[1.5, 0, 0], [0, 1.5, 0]], atol=1e-12)


def test_a_mirrored_face_is_fitted_by_a_rotation_never_a_reflection() -> None:
    mirrored = DLIB_CHIP_TEMPLATE * np.array([-1.0, 1.0]) + np.array([150.0, 0.0])
    matrix = similarity_transform(mirrored, DLIB_CHIP_TEMPLATE)
    assert np.linalg.det(matrix[:, :2]) > 0
    scaled_rotation = matrix[:, :2] / math.sqrt(np.linalg.det(matrix[:, :2]))
    assert np.allclose(scaled_rotation @ scaled_rotation.T, np.eye(2), atol=1e-12)


def test_collinear_points_still_give_a_proper_rotation() -> None:
    src = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    dst = np.array([[0.0, 0.0], [0.0, 2.0], [0.0, 4.0]])
    matrix = similarity_transform(src, dst)
    assert np.allclose(matrix, [[0, -2, 0], [2, 0, 0]], atol=1e-12)


def test_coincident_points_are_refused() -> None:
    with pytest.raises(ValueError):
        similarity_transform(np.ones((5, 2)), DLIB_CHIP_TEMPLATE)
    with pytest.raises(FaceQualityError):
        align_chip(np.zeros((100, 100, 3), np.uint8), np.full((5, 2), 50.0, np.float32))


def _dots_image(points: np.ndarray, height: int, width: int, radius: int) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    for x, y in points:
        cv2.circle(image, (round(x), round(y)), radius, (255, 0, 0), -1)  # blue in BGR
    return image


def _blob_centres(chip: np.ndarray, channel: int) -> np.ndarray:
    mask = (chip[:, :, channel] > 127).astype(np.uint8)
    count, _, _, centroids = cv2.connectedComponentsWithStats(mask)
    assert count == 6, f"expected 5 blobs, found {count - 1}"
    return np.array(sorted(centroids[1:].tolist(), key=lambda p: (round(p[1] / 10), p[0])))


@pytest.mark.parametrize(("angle", "scale"), [(15.0, 1.3), (-30.0, 6.0)])
def test_chip_puts_the_landmarks_on_the_template_and_returns_rgb(angle: float, scale: float) -> None:
    # The second case is a face six times larger than the chip: it takes the shrink-first path.
    to_image = _similarity(angle, scale, 400.0, 300.0)
    template = chip_template(150)
    landmarks = _apply(to_image, template - 75.0).astype(np.float32)
    image = _dots_image(landmarks, 1200, 1000, round(3 * scale))
    chip = align_chip(image, landmarks, 150)
    assert chip.shape == (150, 150, 3) and chip.dtype == np.uint8
    # Blue dots drawn in BGR must land in the last channel of an RGB chip.
    assert not chip[:, :, :2].any()
    expected = np.array(sorted(template.tolist(), key=lambda p: (round(p[1] / 10), p[0])))
    centres = _blob_centres(chip, 2)
    assert np.abs(centres - expected).max() < 0.5


def test_chip_size_scales_the_template() -> None:
    assert np.allclose(chip_template(300), DLIB_CHIP_TEMPLATE * 2)
    image = np.full((200, 200, 3), 90, np.uint8)
    chip = align_chip(image, DLIB_CHIP_TEMPLATE.astype(np.float32) + 20, 112)
    assert chip.shape == (112, 112, 3)


def test_parts_of_the_chip_outside_the_image_are_black() -> None:
    image = np.full((120, 120, 3), 200, np.uint8)
    landmarks = (DLIB_CHIP_TEMPLATE - 60).astype(np.float32)  # face hanging off the top-left corner
    chip = align_chip(image, landmarks, 150)
    assert not chip[:50, :50].any()
    assert (chip[-20:, -20:] == 200).all()


def test_arcface_template_is_a_near_symmetric_frontal_face_inside_its_112_chip() -> None:
    # eyes above nose above mouth, left/right mirror about the chip's centre line within half a pixel
    (lex, ley), (rex, rey), (nx, ny), (lmx, lmy), (rmx, rmy) = ARCFACE_TEMPLATE.tolist()
    assert ARCFACE_TEMPLATE.shape == (5, 2) and not ARCFACE_TEMPLATE.flags.writeable
    assert max(ley, rey) < ny < min(lmy, rmy) < ARCFACE_CHIP_SIZE
    assert lex < nx < rex and lmx < nx < rmx
    centre = ARCFACE_CHIP_SIZE / 2
    assert abs((lex + rex) / 2 - centre) < 0.5 and abs((lmx + rmx) / 2 - centre) < 0.5


@pytest.mark.parametrize(("angle", "scale"), [(-10.0, 2.0), (25.0, 4.5)])
def test_chip_puts_the_landmarks_on_an_explicit_template(angle: float, scale: float) -> None:
    to_image = _similarity(angle, scale, 500.0, 400.0)
    landmarks = _apply(to_image, ARCFACE_TEMPLATE - 56.0).astype(np.float32)
    image = _dots_image(landmarks, 1000, 1000, round(2 * scale))
    chip = align_chip(image, landmarks, ARCFACE_CHIP_SIZE, ARCFACE_TEMPLATE)
    assert chip.shape == (112, 112, 3)
    expected = np.array(sorted(ARCFACE_TEMPLATE.tolist(), key=lambda p: (round(p[1] / 10), p[0])))
    assert np.abs(_blob_centres(chip, 2) - expected).max() < 0.5
    # the default (dlib's layout scaled to 112) puts the same points elsewhere
    default = align_chip(image, landmarks, ARCFACE_CHIP_SIZE)
    assert np.abs(_blob_centres(default, 2) - expected).max() > 2.0
