"""Passive presentation-attack detection accuracy: live frames against attack frames (ISO 30107-3 terms)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from terminal.domain import FaceBox
from terminal.evaluation.collect import Skip
from terminal.evaluation.datasets import DatasetError
from terminal.evaluation.metrics import Rate, rate_at, rejected_at, threshold_for_rejection

BPCER_TARGETS = (0.01, 0.05, 0.10)

# The live-face score of one image and face: MiniFASNet's fused real-class probability.
Scorer = Callable[[NDArray[np.uint8], FaceBox], float]


@dataclass(frozen=True)
class LivenessPoint:
    """The strictest threshold rejecting at most target of the live faces, and the APCER there."""

    target_bpcer: float
    threshold: float
    bpcer: Rate
    apcer: Rate


@dataclass(frozen=True)
class LivenessEvaluation:
    """APCER (attacks accepted) and BPCER (live faces refused) at threshold and at BPCER targets."""

    threshold: float
    apcer: Rate
    bpcer: Rate
    operating_points: list[LivenessPoint]
    skipped: list[Skip]


def scores_of(faces: Sequence[tuple[NDArray[np.uint8], FaceBox]], scorer: Scorer) -> NDArray[np.float64]:
    """The ascending-sorted live-face scores of the given images."""
    return np.sort(np.array([scorer(image, box) for image, box in faces], dtype=np.float64))


def evaluate_liveness(
    live: NDArray[np.float64], attack: NDArray[np.float64], threshold: float, skipped: list[Skip]
) -> LivenessEvaluation:
    """Rates from ascending-sorted live and attack scores; a face passes when its score reaches threshold."""
    if live.size == 0 or attack.size == 0:
        raise DatasetError("need at least one usable live and one usable attack image")
    points = []
    for target in BPCER_TARGETS:
        t = threshold_for_rejection(live, target)
        points.append(LivenessPoint(target, t, rejected_at(live, t), rate_at(attack, t)))
    return LivenessEvaluation(
        threshold, rate_at(attack, threshold), rejected_at(live, threshold), points, skipped
    )
