"""Template comparison in each embedder's own metric, and which way its threshold points."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from terminal.errors import ModelError
from terminal.ports import Metric

# Below this norm a template carries no direction; cosine similarity would divide by ~zero.
_MIN_NORM = 1e-12


def normalised(templates: NDArray[np.floating]) -> NDArray[np.float64]:
    """Rows scaled to unit length (zero rows stay zero)."""
    rows = np.asarray(templates, dtype=np.float64)
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return np.asarray(rows / np.maximum(norms, _MIN_NORM), dtype=np.float64)


def scores(
    template: NDArray[np.float32], gallery: NDArray[np.float32], metric: Metric
) -> NDArray[np.float64]:
    """One template's score against each gallery row: a distance (euclidean) or a similarity (cosine)."""
    if gallery.shape[0] == 0:
        return np.zeros((0,), dtype=np.float64)
    if gallery.shape[1:] != template.shape:
        # Templates of different lengths come from different models and can never be compared.
        raise ModelError(f"templates of different shapes {template.shape} and {gallery.shape[1:]}")
    if metric == "cosine":
        # einsum, not a BLAS product: each row's score is then the same whichever other rows are scored
        # with it, so the index's exact re-ranking over a few rows equals a scan over all of them
        return np.asarray(np.einsum("ij,j->i", normalised(gallery), normalised(template)), dtype=np.float64)
    diff = gallery.astype(np.float64) - template.astype(np.float64)[np.newaxis, :]
    return np.asarray(np.sqrt(np.einsum("ij,ij->i", diff, diff)), dtype=np.float64)


def score_matrix(
    rows: NDArray[np.floating], columns: NDArray[np.floating], metric: Metric
) -> NDArray[np.float64]:
    """All scores between two template sets at once (rows × columns), for evaluations over many pairs."""
    if metric == "cosine":
        return normalised(rows) @ normalised(columns).T
    a = np.asarray(rows, dtype=np.float64)
    b = np.asarray(columns, dtype=np.float64)
    squared = (a * a).sum(axis=1)[:, np.newaxis] + (b * b).sum(axis=1)[np.newaxis, :] - 2.0 * (a @ b.T)
    # rounding can make a zero distance slightly negative
    return np.asarray(np.sqrt(np.maximum(squared, 0.0)), dtype=np.float64)


def closeness(score: NDArray[np.float64] | float, metric: Metric) -> NDArray[np.float64]:
    """Scores turned so that larger always means more alike (a distance is negated)."""
    values = np.asarray(score, dtype=np.float64)
    return values if metric == "cosine" else -values


def accepts(score: float, threshold: float, metric: Metric) -> bool:
    """Whether a score is a match at threshold, in the metric's own direction (inclusive)."""
    return score >= threshold if metric == "cosine" else score <= threshold
