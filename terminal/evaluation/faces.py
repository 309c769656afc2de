"""Face matching accuracy: impostor pairs from one-person-per-image folders, genuine pairs across sessions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from terminal.evaluation.collect import Embedded, Skip
from terminal.evaluation.datasets import DatasetError, Sample, genuine_pairs, group_pairs, probe_groups
from terminal.evaluation.groups import Attributes, attributes_of, pair_groups
from terminal.evaluation.metrics import Rate, rate_at, threshold_for_fmr, upper_triangle
from terminal.ports import Metric
from terminal.vision.metric import closeness, normalised, score_matrix

OPERATING_FMRS = (1e-3, 1e-4, 1e-5)


@dataclass(frozen=True)
class OperatingPoint:
    """The loosest threshold meeting a target false-match rate, and the true-match rate there."""

    target_fmr: float
    threshold: float
    fmr: Rate
    tmr: Rate


@dataclass(frozen=True)
class FaceEvaluation:
    """Everything measured in one run, thresholds in the embedder's own metric."""

    metric: Metric
    threshold: float
    fmr: Rate
    tmr: Rate
    tmr_per_person: dict[str, Rate]
    operating_points: list[OperatingPoint]
    groups: dict[str, Rate]
    skipped: list[Skip]
    frames: int


def _sorted(values: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.sort(np.asarray(values, dtype=np.float64), kind="stable")


def to_closeness(threshold: float, metric: Metric) -> float:
    """A threshold in the metric's units as a closeness threshold (larger = more alike)."""
    return float(closeness(threshold, metric))


def from_closeness(value: float, metric: Metric) -> float:
    """A closeness threshold back in the metric's own units."""
    return float(closeness(value, metric))


def impostor_scores(
    templates: NDArray[np.float32], metric: Metric, attributes: list[Attributes]
) -> tuple[NDArray[np.float64], dict[str, NDArray[np.float64]]]:
    """Closeness of every unordered pair (one person per image), and the same split by group."""
    if templates.shape[0] < 2:
        raise DatasetError("fewer than two usable impostor images: no impostor pairs")
    pairs = closeness(upper_triangle(score_matrix(templates, templates, metric)), metric)
    first, second = np.triu_indices(templates.shape[0], k=1)
    masks = pair_groups(attributes, first.astype(np.int64), second.astype(np.int64))
    return _sorted(pairs), {name: _sorted(pairs[mask]) for name, mask in masks.items()}


def _mean_templates(
    templates: NDArray[np.float32], groups: list[list[int]], metric: Metric
) -> NDArray[np.float64]:
    # cosine compares directions, so directions are averaged; a distance metric averages the vectors
    rows = normalised(templates) if metric == "cosine" else templates.astype(np.float64)
    return np.stack([rows[members].mean(axis=0) for members in groups])


def genuine_scores(
    templates: NDArray[np.float32],
    samples: list[Sample],
    metric: Metric,
    frames: int,
    cross_session_only: bool,
) -> tuple[NDArray[np.float64], NDArray[np.int64], list[str]]:
    """Closeness of every genuine pair, each pair's person index, and the person names.

    frames = 1: image against image. frames = k > 1: the mean template of k consecutive frames of one
    session (a k-frame decision) against each single image of the same person's other sessions.
    """
    people = sorted({s.person for s in samples})
    person_index = np.array([people.index(s.person) for s in samples], dtype=np.int64)
    if frames <= 1:
        left, right = genuine_pairs(samples, cross_session_only)
        if left.size == 0:
            return np.zeros(0), np.zeros(0, dtype=np.int64), people
        matrix = score_matrix(templates, templates, metric)
        return closeness(matrix[left, right], metric), person_index[left], people
    groups = probe_groups(samples, frames)
    g, right = group_pairs(samples, groups, cross_session_only)
    if g.size == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int64), people
    matrix = score_matrix(_mean_templates(templates, groups, metric), templates, metric)
    return closeness(matrix[g, right], metric), person_index[right], people


def evaluate_faces(
    impostors: Embedded,
    impostor_paths: list[Path],
    genuine: Embedded,
    genuine_samples: list[Sample],
    metric: Metric,
    threshold: float,
    *,
    frames: int = 1,
    cross_session_only: bool = False,
    labels: dict[str, Attributes] | None = None,
) -> FaceEvaluation:
    """False- and true-match rates at threshold and at the standard false-match targets."""
    kept_paths = [impostor_paths[i] for i in impostors.kept]
    imp, by_group = impostor_scores(impostors.templates, metric, attributes_of(kept_paths, labels))
    kept_samples = [genuine_samples[i] for i in genuine.kept]
    gen, owner, people = genuine_scores(genuine.templates, kept_samples, metric, frames, cross_session_only)
    if gen.size == 0:
        raise DatasetError("no genuine pairs: each person needs two usable images (in two sessions)")
    order = np.argsort(gen, kind="stable")
    gen, owner = gen[order], owner[order]
    at = to_closeness(threshold, metric)
    per_person = {people[p]: rate_at(gen[owner == p], at) for p in range(len(people)) if (owner == p).any()}
    points = []
    for target in OPERATING_FMRS:
        t = threshold_for_fmr(imp, target)
        points.append(OperatingPoint(target, from_closeness(t, metric), rate_at(imp, t), rate_at(gen, t)))
    return FaceEvaluation(
        metric=metric,
        threshold=threshold,
        fmr=rate_at(imp, at),
        tmr=rate_at(gen, at),
        tmr_per_person=per_person,
        operating_points=points,
        groups={name: rate_at(scores, at) for name, scores in by_group.items()},
        skipped=impostors.skipped + genuine.skipped,
        frames=frames,
    )
