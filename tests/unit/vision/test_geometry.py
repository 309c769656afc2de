"""Box maths of the cascade detector on fixed points."""

from __future__ import annotations

import numpy as np
import pytest

from terminal.vision.geometry import areas, crop_padded, nms, regress, square, to_pixels


def _boxes(*rows: tuple[float, float, float, float]) -> np.ndarray:
    return np.array(rows, dtype=np.float32)


def test_area_is_width_times_height_with_half_open_extent() -> None:
    assert areas(_boxes((0, 0, 10, 20), (5, 5, 5, 9))).tolist() == [200.0, 0.0]


def test_iou_nms_drops_a_heavily_overlapping_weaker_box_and_keeps_a_distant_one() -> None:
    boxes = _boxes((0, 0, 10, 10), (1, 0, 11, 10), (50, 50, 60, 60))
    scores = np.array([0.8, 0.9, 0.7], dtype=np.float32)
    # IoU of the first two is 90/110 ≈ 0.82
    assert nms(boxes, scores, 0.7, "iou").tolist() == [1, 2]
    assert nms(boxes, scores, 0.85, "iou").tolist() == [1, 0, 2]


def test_iou_nms_threshold_is_exclusive() -> None:
    # The lower half of a box has IoU exactly 0.5 with it: kept at 0.5, dropped just below.
    boxes = _boxes((0, 0, 10, 10), (0, 0, 10, 5))
    scores = np.array([0.9, 0.8], dtype=np.float32)
    assert nms(boxes, scores, 0.5, "iou").tolist() == [0, 1]
    assert nms(boxes, scores, 0.49, "iou").tolist() == [0]


def test_min_nms_removes_a_small_box_inside_a_large_one_that_iou_keeps() -> None:
    boxes = _boxes((0, 0, 100, 100), (10, 10, 30, 30))
    scores = np.array([0.9, 0.95], dtype=np.float32)
    assert nms(boxes, scores, 0.7, "iou").tolist() == [1, 0]
    assert nms(boxes, scores, 0.7, "min").tolist() == [1]


def test_nms_orders_by_score_and_keeps_input_order_on_ties() -> None:
    boxes = _boxes((0, 0, 1, 1), (10, 10, 11, 11), (20, 20, 21, 21))
    scores = np.array([0.5, 0.9, 0.5], dtype=np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [1, 0, 2]


def test_nms_of_nothing_is_nothing() -> None:
    kept = nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5)
    assert kept.shape == (0,)


def test_regression_offsets_scale_with_box_width_and_height() -> None:
    boxes = _boxes((10, 20, 30, 60))  # 20 wide, 40 high
    offsets = np.array([[0.1, -0.25, 0.5, 0.0]], dtype=np.float32)
    assert regress(boxes, offsets).tolist() == [[12.0, 10.0, 40.0, 60.0]]


def test_square_grows_the_short_side_about_the_centre() -> None:
    assert square(_boxes((10, 20, 30, 60))).tolist() == [[0.0, 20.0, 40.0, 60.0]]
    assert square(_boxes((0, 0, 40, 10))).tolist() == [[0.0, -15.0, 40.0, 25.0]]


def test_to_pixels_floors_negative_corners_outwards() -> None:
    assert to_pixels(_boxes((-0.5, 1.5, 9.9, 10.0))).tolist() == [[-1, 1, 9, 10]]


def test_crop_inside_the_image_is_the_plain_slice() -> None:
    image = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3)
    assert np.array_equal(crop_padded(image, 1, 2, 4, 5), image[2:5, 1:4])


def test_crop_leaving_the_image_is_zero_padded_in_place() -> None:
    image = np.full((4, 4, 3), 7, dtype=np.uint8)
    crop = crop_padded(image, -2, -1, 3, 6)
    assert crop.shape == (7, 5, 3)
    expected = np.zeros((7, 5, 3), dtype=np.uint8)
    expected[1:5, 2:5] = 7
    assert np.array_equal(crop, expected)


def test_crop_entirely_outside_the_image_is_black() -> None:
    image = np.full((4, 4, 3), 7, dtype=np.uint8)
    assert not crop_padded(image, 10, 10, 14, 12).any()


def test_empty_crop_is_refused() -> None:
    with pytest.raises(ValueError):
        crop_padded(np.zeros((4, 4, 3), np.uint8), 2, 2, 2, 3)
