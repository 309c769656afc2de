"""Values shared by the liveness checks: one presentation, one check's result.

The sensor frames (NirFrame, DepthFrame) live in terminal.domain since the Camera port delivers them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from terminal.domain import DepthFrame as DepthFrame  # re-exported: the checks' older import path
from terminal.domain import FaceBox, Frame
from terminal.domain import NirFrame as NirFrame

Status = Literal["pass", "fail", "missing"]


@dataclass(frozen=True)
class LivenessSample:
    """One presentation: RGB frames with their face boxes (None where no face), plus NIR and depth."""

    rgb: tuple[Frame, ...]
    boxes: tuple[FaceBox | None, ...]
    nir: tuple[NirFrame, ...] = ()
    depth: tuple[DepthFrame, ...] = ()

    def __post_init__(self) -> None:
        if len(self.rgb) != len(self.boxes):
            raise ValueError(f"{len(self.rgb)} RGB frames but {len(self.boxes)} boxes")

    @property
    def primary_box(self) -> FaceBox | None:
        """The face box of the last RGB frame that has one (NIR/depth are registered to it)."""
        for box in reversed(self.boxes):
            if box is not None:
                return box
        return None


@dataclass(frozen=True)
class CheckResult:
    """What one check concluded. Scores and reasons are for technicians, never for the patient."""

    name: str
    status: Status
    score: float
    reason: str = ""
    details: dict[str, float] = field(default_factory=dict)

    @classmethod
    def passed(cls, name: str, score: float, details: dict[str, float] | None = None) -> CheckResult:
        """A passing result."""
        return cls(name, "pass", score, "", details or {})

    @classmethod
    def failed(
        cls, name: str, score: float, reason: str, details: dict[str, float] | None = None
    ) -> CheckResult:
        """A failing result with the reason (diagnostics only)."""
        return cls(name, "fail", score, reason, details or {})

    @classmethod
    def missing(cls, name: str, reason: str) -> CheckResult:
        """The check's signal was not delivered; fusion treats this as a failure (fail closed)."""
        return cls(name, "missing", 0.0, reason)


class LivenessCheck(Protocol):
    """One presentation-attack check over a whole presentation (refines terminal.ports.LivenessCheck)."""

    name: str

    def check(self, sample: LivenessSample) -> CheckResult:
        """Judge the presentation; never raises for bad input, returns fail or missing instead."""
        ...


def box_region(box: FaceBox, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The box clipped to an image of the given shape, as integer (x1, y1, x2, y2), possibly empty."""
    height, width = shape[0], shape[1]
    x1 = min(max(round(box.x1), 0), width)
    y1 = min(max(round(box.y1), 0), height)
    x2 = min(max(round(box.x2), x1), width)
    y2 = min(max(round(box.y2), y1), height)
    return x1, y1, x2, y2


def landmark_array(box: FaceBox) -> NDArray[np.float64]:
    """The five landmarks as a 5×2 float64 array."""
    return np.asarray(box.landmarks, dtype=np.float64)
