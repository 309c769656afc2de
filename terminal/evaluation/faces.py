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


def common_rows(probe: Embedded, gallery: Embedded) -> tuple[Embedded, Embedded]:
    """Both embeddings cut to the images usable on both sides (same rows, same order), skips merged."""
    shared = sorted(set(probe.kept) & set(gallery.kept))
    seen = {s.file for s in probe.skipped}
    skipped = probe.skipped + [s for s in gallery.skipped if s.file not in seen]

    def cut(side: Embedded) -> Embedded:
        row = {index: r for r, index in enumerate(side.kept)}
        return Embedded(side.templates[[row[i] for i in shared]], shared, skipped)

    return cut(probe), cut(gallery)


def impostor_scores(
    templates: NDArray[np.float32],
    metric: Metric,
    attributes: list[Attributes],
    gallery: NDArray[np.float32] | None = None,
) -> tuple[NDArray[np.float64], dict[str, NDArray[np.float64]]]:
    """Closeness of every unordered pair (one person per image), and the same split by group.

    With gallery (the same images on another detector's chips, row for row), pair i < j is gallery i
    against probe j: one mixed comparison per pair of people, as many pairs as without it.
    """
    if templates.shape[0] < 2:
        raise DatasetError("fewer than two usable impostor images: no impostor pairs")
    enrolled = templates if gallery is None else gallery
    pairs = closeness(upper_triangle(score_matrix(enrolled, templates, metric)), metric)
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
    gallery: NDArray[np.float32] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.int64], list[str]]:
    """Closeness of every genuine pair, each pair's person index, and the person names.

    frames = 1: image against image (pair i < j: probe i against gallery j). frames = k > 1: the mean
    template of k consecutive frames of one session (a k-frame decision) against each single image of
    the same person's other sessions. gallery: the gallery side's templates (another detector's chips).
    """
    enrolled = templates if gallery is None else gallery
    people = sorted({s.person for s in samples})
    person_index = np.array([people.index(s.person) for s in samples], dtype=np.int64)
    if frames <= 1:
        left, right = genuine_pairs(samples, cross_session_only)
        if left.size == 0:
            return np.zeros(0), np.zeros(0, dtype=np.int64), people
        matrix = score_matrix(templates, enrolled, metric)
        return closeness(matrix[left, right], metric), person_index[left], people
    groups = probe_groups(samples, frames)
    g, right = group_pairs(samples, groups, cross_session_only)
    if g.size == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int64), people
    matrix = score_matrix(_mean_templates(templates, groups, metric), enrolled, metric)
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
    gallery: tuple[Embedded, Embedded] | None = None,
) -> FaceEvaluation:
    """False- and true-match rates at threshold and at the standard false-match targets.

    gallery: the (impostor, genuine) images embedded once more for the gallery side (enrolled on another
    detector's chips); then every pair compares a gallery template with a probe one, over the images
    usable on both sides.
    """
    imp_gallery = gen_gallery = None
    if gallery is not None:
        impostors, imp_side = common_rows(impostors, gallery[0])
        genuine, gen_side = common_rows(genuine, gallery[1])
        imp_gallery, gen_gallery = imp_side.templates, gen_side.templates
    kept_paths = [impostor_paths[i] for i in impostors.kept]
    attributes = attributes_of(kept_paths, labels)
    imp, by_group = impostor_scores(impostors.templates, metric, attributes, imp_gallery)
    kept_samples = [genuine_samples[i] for i in genuine.kept]
    gen, owner, people = genuine_scores(
        genuine.templates, kept_samples, metric, frames, cross_session_only, gen_gallery
    )
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
