"""Liveness configuration and the fusion policy per hardware profile; every gap fails closed."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from terminal.vision.liveness.types import CheckResult

log = logging.getLogger(__name__)

Profile = Literal["rgb", "rgb+nir", "rgb+depth"]

# Which signals each hardware profile must deliver. The active challenge is required on every
# profile: it is the only check that binds the presentation to this moment (anti-replay).
REQUIRED: dict[Profile, tuple[str, ...]] = {
    "rgb": ("active_challenge",),
    "rgb+nir": ("active_challenge", "nir"),
    "rgb+depth": ("active_challenge", "depth"),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChallengeSettings(_Strict):
    """Active-challenge thresholds."""

    moves: Annotated[int, Field(description="head movements asked per attempt", ge=1, le=6)] = 3
    turn_degrees: Annotated[float, Field(description="yaw change that counts as a turn", gt=0, le=45)] = 15.0
    nod_degrees: Annotated[float, Field(description="pitch change that counts as a nod", gt=0, le=45)] = 10.0
    step_timeout_s: Annotated[float, Field(description="seconds allowed per movement", gt=0, le=30)] = 6.0
    min_parallax: Annotated[
        float, Field(description="nose off the eye/mouth plane, inter-ocular units; photos stay near 0", gt=0)
    ] = 0.12


class DepthSettings(_Strict):
    """Depth-check thresholds (mm)."""

    max_hole_fraction: Annotated[float, Field(ge=0, le=1)] = 0.15
    min_plane_rms: Annotated[float, Field(gt=0)] = 4.0
    min_cylinder_rms: Annotated[float, Field(gt=0)] = 2.5
    min_nose_relief: Annotated[float, Field(gt=0)] = 8.0
    focal_px: Annotated[
        float, Field(description="depth camera focal length in pixels (from its calibration)", gt=0)
    ] = 600.0


class NirSettings(_Strict):
    """NIR-check thresholds."""

    min_face_level: Annotated[float, Field(ge=0, le=255)] = 40.0
    min_face_contrast: Annotated[float, Field(ge=0)] = 0.08
    min_shading: Annotated[float, Field(ge=0)] = 0.08
    max_fine_texture: Annotated[float, Field(gt=0)] = 0.35


class PassiveSettings(_Strict):
    """The optional MiniFASNet pack; when enabled it becomes a required signal (fail closed if absent)."""

    enabled: Annotated[bool, Field(description="use the provisioned MiniFASNet pack")] = False
    real_threshold: Annotated[
        float, Field(description="fused real-class probability to pass", gt=0, le=1)
    ] = 0.8


class LivenessConfig(_Strict):
    """`[liveness]`: hardware profile, thresholds and the attempt limit."""

    profile: Annotated[Profile, Field(description="which sensors this kiosk has")] = "rgb"
    max_attempts: Annotated[
        int,
        Field(description="failed liveness attempts before the face path ends for the session", ge=1, le=10),
    ] = 3
    challenge: ChallengeSettings = ChallengeSettings()
    depth: DepthSettings = DepthSettings()
    nir: NirSettings = NirSettings()
    passive: PassiveSettings = PassiveSettings()

    def required(self) -> tuple[str, ...]:
        """Names of the checks that must all pass for this configuration."""
        names = REQUIRED[self.profile]
        return (*names, "passive_rgb") if self.passive.enabled else names


@dataclass(frozen=True)
class Decision:
    """Fusion outcome: live or not, plus every check's result (diagnostics only)."""

    live: bool
    results: tuple[CheckResult, ...]
    reason: str


def fuse(required: tuple[str, ...], results: Mapping[str, CheckResult]) -> Decision:
    """Live only when every required check ran and passed; a missing signal is a failure."""
    ordered = tuple(results[name] for name in required if name in results)
    for name in required:
        result = results.get(name)
        if result is None:
            return Decision(False, ordered, f"{name}: not run")
        if result.status == "missing":
            return Decision(False, ordered, f"{name}: signal missing ({result.reason})")
        if result.status != "pass":
            return Decision(False, ordered, f"{name}: {result.reason}")
    extra = tuple(r for n, r in results.items() if n not in required)
    # Extra checks (delivered but not required) may veto, never rescue.
    for result in extra:
        if result.status == "fail":
            return Decision(False, ordered + extra, f"{result.name}: {result.reason}")
    return Decision(True, ordered + extra, "")
