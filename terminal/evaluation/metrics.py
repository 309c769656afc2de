"""Error rates over many scored pairs, vectorised: sorted scores, binary search, Wilson intervals.

Scores here are closeness values (larger = more alike; a distance is negated before it gets here) and a
pair is accepted when its closeness is at least the threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

# two-sided 95 % normal quantile
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Rate:
    """count of total, with its Wilson score 95 % interval."""

    count: int
    total: int

    @property
    def value(self) -> float:
        """count / total (0 when there is nothing to count)."""
        return self.count / self.total if self.total else 0.0

    @property
    def ci95(self) -> tuple[float, float]:
        """Wilson score interval at 95 %."""
        return wilson_interval(self.count, self.total)


def wilson_interval(count: int, total: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0, 1) when total is 0.

    Chosen over the normal approximation because it stays inside [0, 1] and is not zero-width at 0 errors,
    which is where a good face matcher's false-match count sits.
    """
    if total <= 0:
        return 0.0, 1.0
    p = count / total
    denominator = 1.0 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    # at 0 or total the exact bound is 0 or 1; rounding must not leave it a hair away
    low = 0.0 if count == 0 else max(0.0, centre - half)
    high = 1.0 if count == total else min(1.0, centre + half)
    return low, high


def upper_triangle(matrix: NDArray[np.float64]) -> NDArray[np.float64]:
    """The scores above the diagonal of a square matrix: every unordered pair once, no self-pairs."""
    rows, cols = np.triu_indices(matrix.shape[0], k=1)
    return np.asarray(matrix[rows, cols], dtype=np.float64)


def accepted(sorted_scores: NDArray[np.float64], threshold: float) -> int:
    """How many of the ascending-sorted closeness scores are at least threshold."""
    return int(sorted_scores.size - np.searchsorted(sorted_scores, threshold, side="left"))


def threshold_for_fmr(sorted_impostors: NDArray[np.float64], target: float) -> float:
    """The loosest threshold whose false-match rate is at most target (ascending-sorted impostor scores).

    With n impostor pairs, at most floor(target·n) may pass: the threshold sits just above the next one.
    """
    total = sorted_impostors.size
    if total == 0:
        raise ValueError("no impostor pairs to choose a threshold from")
    # the tiny slack keeps e.g. 1e-4 × 30000 = 2.9999999999999996 from flooring to 2
    allowed = math.floor(target * total + 1e-9)
    if allowed >= total:
        return float(sorted_impostors[0])
    return float(np.nextafter(sorted_impostors[total - 1 - allowed], np.inf))


def threshold_for_rejection(sorted_bona_fide: NDArray[np.float64], target: float) -> float:
    """The strictest threshold that rejects at most target of the bona-fide scores (ascending-sorted)."""
    total = sorted_bona_fide.size
    if total == 0:
        raise ValueError("no bona-fide scores to choose a threshold from")
    allowed = math.floor(target * total + 1e-9)
    if allowed >= total:
        return float(np.nextafter(sorted_bona_fide[-1], np.inf))
    return float(sorted_bona_fide[allowed])


def rate_at(sorted_scores: NDArray[np.float64], threshold: float) -> Rate:
    """Accepted pairs at threshold as a Rate."""
    return Rate(accepted(sorted_scores, threshold), int(sorted_scores.size))


def rejected_at(sorted_scores: NDArray[np.float64], threshold: float) -> Rate:
    """Rejected pairs (closeness below threshold) as a Rate."""
    return Rate(int(sorted_scores.size) - accepted(sorted_scores, threshold), int(sorted_scores.size))
