"""An embedder's operating point: the manifest's measured threshold and false-match rate, tightened by config.

The manifest holds, for each embedder, the threshold that keeps the false-match rate (FMR) at or below
1e-4 on held-out East-Asian faces and the upper 95 % bound of the FMR measured there (docs/identity.md).
Config may only make matching stricter: a threshold further in the metric's own direction, a smaller
1:N gallery. A looser value is refused, not clamped, so a technician sees what the measurement allows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from terminal.config import IdentityConfig
from terminal.errors import ConfigError, ModelError
from terminal.ports import Metric
from terminal.vision.manifest import MANIFEST_NAME
from terminal.vision.metric import accepts

# Expected false candidates a stranger's 1:N search may meet: G x FMR <= budget. At 0.01, about one
# unenrolled person in a hundred would have someone in the gallery within threshold.
FALSE_CANDIDATE_BUDGET = 0.01

_DIRECTION = {
    "cosine": "a cosine similarity matches at or above the threshold, so a lower one accepts more strangers",
    "euclidean": "a distance matches at or below the threshold, so a higher one accepts more strangers",
}


@dataclass(frozen=True)
class OperatingPoint:
    """The threshold and 1:N cap a terminal matches with, beside the measured figures they rest on."""

    embedder: str
    metric: Metric
    threshold: float
    measured_threshold: float
    fmr: float  # upper 95 % bound at measured_threshold; at a stricter threshold the rate is lower still
    max_gallery_for_1n: int
    derived_max_gallery: int

    def describe(self) -> dict[str, Any]:
        """Plain data for technician diagnostics (never shown to patients)."""
        return {
            "embedder": self.embedder,
            "metric": self.metric,
            "threshold": self.threshold,
            "measured_threshold": self.measured_threshold,
            "fmr_upper95": self.fmr,
            "max_gallery_for_1n": self.max_gallery_for_1n,
            "derived_max_gallery_for_1n": self.derived_max_gallery,
        }


def gallery_cap(fmr: float, budget: float = FALSE_CANDIDATE_BUDGET) -> int:
    """Largest gallery whose expected false candidates per stranger search, G x FMR, stay within budget."""
    if not 0 < fmr < 1 or budget <= 0:
        raise ValueError(f"need 0 < fmr < 1 and a positive budget, got fmr {fmr}, budget {budget}")
    # a hair of tolerance: 0.01 / 1e-4 is 99.99999999999999 in binary floating point
    return max(1, math.floor(budget / fmr + 1e-9))


class MeasuredModel(Protocol):
    """An embedder's declaration: a shipped manifest entry or an operator pack's model."""

    @property
    def name(self) -> str:
        """The model's name."""
        ...

    @property
    def metric(self) -> Metric | None:
        """How its templates compare."""
        ...

    @property
    def threshold(self) -> float | None:
        """The measured 1:1 operating point."""
        ...

    @property
    def fmr(self) -> float | None:
        """Upper bound of the false-match rate measured there."""
        ...


def _for_detector(entry: object) -> str:
    """Which detector's chips the missing point would have been measured on, when the entry says."""
    detector = getattr(entry, "measured_with", None)
    return f"for the {detector} detector's chips" if isinstance(detector, str) else "for this model"


def operating_point(entry: MeasuredModel, identity: IdentityConfig, metric: Metric) -> OperatingPoint:
    """The embedder's measured point, tightened by [identity]; ConfigError when config would loosen it."""
    if entry.threshold is None or entry.fmr is None:
        raise ModelError(
            f"model {entry.name} declares no measured threshold and fmr in {MANIFEST_NAME} "
            f"{_for_detector(entry)}; "
            "measure it with `medpay evaluate faces` before matching with it (docs/identity.md)"
        )
    if entry.metric != metric:
        raise ModelError(
            f"model {entry.name} is declared with metric {entry.metric}, its embedder uses {metric}"
        )
    measured = entry.threshold
    threshold = measured if identity.threshold is None else identity.threshold
    if not accepts(threshold, measured, metric):
        raise ConfigError(
            f"[identity] threshold {threshold} is looser than {entry.name}'s measured operating point "
            f"{measured} in {MANIFEST_NAME} (FMR <= {entry.fmr:.3g} on East-Asian faces, "
            f"docs/identity.md): {_DIRECTION[metric]}. Remove the key to use {measured}, or set a "
            "stricter value"
        )
    derived = gallery_cap(entry.fmr)
    cap = derived if identity.max_gallery_for_1n is None else identity.max_gallery_for_1n
    if cap > derived:
        raise ConfigError(
            f"[identity] max_gallery_for_1n {cap} is above the {derived} people that {entry.name}'s measured "
            f"FMR {entry.fmr:.3g} allows (G x FMR <= {FALSE_CANDIDATE_BUDGET} false candidates per "
            "stranger search, docs/identity.md); remove the key or set a smaller gallery"
        )
    return OperatingPoint(entry.name, metric, threshold, measured, entry.fmr, cap, derived)
