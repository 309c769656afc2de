"""Error-rate arithmetic on constructed score arrays: exact counts, thresholds and Wilson bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from terminal.evaluation.metrics import (
    Z95,
    Rate,
    accepted,
    rate_at,
    rejected_at,
    threshold_for_fmr,
    threshold_for_rejection,
    upper_triangle,
    wilson_interval,
)


def test_wilson_interval_matches_the_closed_form() -> None:
    # 5 of 10: centre 0.5, half-width z·sqrt(0.025 + z²/400)/(1 + z²/10)
    z2 = Z95 * Z95
    half = Z95 * math.sqrt(0.025 + z2 / 400) / (1 + z2 / 10)
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.5 - half) and high == pytest.approx(0.5 + half)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=1e-4)


def test_wilson_interval_at_zero_errors_is_not_zero_width() -> None:
    # at 0 of n the upper bound is z²/(n + z²): about 3.84/n for large n, the "rule of 3.84"
    low, high = wilson_interval(0, 100_000)
    assert low == 0.0 and high == pytest.approx(z2 := Z95 * Z95 / (100_000 + Z95 * Z95))
    assert 3.8e-5 < z2 < 3.9e-5
    assert wilson_interval(7, 7)[1] == 1.0 and wilson_interval(0, 0) == (0.0, 1.0)


def test_rates_count_scores_at_the_threshold_as_accepted() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.3, 0.9])
    assert accepted(scores, 0.3) == 3
    assert rate_at(scores, 0.3) == Rate(3, 5)
    assert rejected_at(scores, 0.3) == Rate(2, 5)
    assert rate_at(scores, 1.0).value == 0.0 and Rate(0, 0).value == 0.0


def test_threshold_for_fmr_admits_exactly_the_allowed_false_matches() -> None:
    impostors = np.arange(1000, dtype=np.float64) / 1000  # 0.000 … 0.999
    for target, allowed in ((1e-2, 10), (1e-3, 1), (1e-4, 0)):
        t = threshold_for_fmr(impostors, target)
        assert accepted(impostors, t) == allowed
        # one step looser admits one more: the threshold is the loosest that meets the target
        assert accepted(impostors, float(np.nextafter(t, -np.inf))) == allowed + 1


def test_threshold_for_fmr_never_splits_tied_scores_above_the_target() -> None:
    impostors = np.array([0.1, 0.5, 0.5, 0.5])
    t = threshold_for_fmr(impostors, 0.5)  # 2 allowed, but three tie at 0.5: none of them may pass
    assert t > 0.5 and accepted(impostors, t) == 0
    with pytest.raises(ValueError):
        threshold_for_fmr(np.array([]), 1e-4)


def test_threshold_for_fmr_is_not_fooled_by_float_rounding_of_the_target() -> None:
    impostors = np.arange(30_000, dtype=np.float64)
    # 1e-4 × 30000 is 2.9999999999999996 in floating point; three false matches are allowed
    assert accepted(impostors, threshold_for_fmr(impostors, 1e-4)) == 3


def test_threshold_for_rejection_rejects_at_most_the_target_share_of_live_faces() -> None:
    live = np.arange(1, 21, dtype=np.float64) / 20  # 0.05 … 1.0
    t = threshold_for_rejection(live, 0.10)
    assert t == pytest.approx(0.15) and rejected_at(live, t) == Rate(2, 20)
    assert rejected_at(live, threshold_for_rejection(live, 0.01)) == Rate(0, 20)


def test_upper_triangle_takes_every_unordered_pair_once() -> None:
    matrix = np.arange(16, dtype=np.float64).reshape(4, 4)
    assert upper_triangle(matrix).tolist() == [1, 2, 3, 6, 7, 11]
