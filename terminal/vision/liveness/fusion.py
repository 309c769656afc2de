"""The fusion policy per hardware profile: which checks must pass; every gap fails closed."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from terminal.config.liveness import LivenessConfig, Profile
from terminal.vision.liveness.types import CheckResult

log = logging.getLogger(__name__)

# Which signals each hardware profile must deliver. The active challenge is required on every
# profile: it is the only check that binds the presentation to this moment (anti-replay).
REQUIRED: dict[Profile, tuple[str, ...]] = {
    "rgb": ("active_challenge",),
    "rgb+nir": ("active_challenge", "nir"),
    "rgb+depth": ("active_challenge", "depth"),
}


def required_checks(config: LivenessConfig) -> tuple[str, ...]:
    """Names of the checks that must all pass for this configuration."""
    names = REQUIRED[config.profile]
    return (*names, "passive_rgb") if config.passive.enabled else names


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
