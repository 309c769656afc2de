"""Fusion per hardware profile fails closed; the config is strict."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from terminal.config import LivenessConfig
from terminal.vision.liveness.fusion import fuse, required_checks
from terminal.vision.liveness.types import CheckResult

OK = CheckResult.passed


def _all_pass(*names: str) -> dict[str, CheckResult]:
    return {n: OK(n, 1.0) for n in names}


@pytest.mark.parametrize(
    ("profile", "required"),
    [
        ("rgb", {"active_challenge"}),
        ("rgb+nir", {"active_challenge", "nir"}),
        ("rgb+depth", {"active_challenge", "depth"}),
    ],
)
def test_each_profile_requires_its_signals(profile: str, required: set[str]) -> None:
    cfg = LivenessConfig.model_validate({"profile": profile})
    assert set(required_checks(cfg)) == required
    assert fuse(required_checks(cfg), _all_pass(*required)).live
    for name in required:
        results = _all_pass(*required)
        del results[name]
        assert not fuse(required_checks(cfg), results).live
        results[name] = CheckResult.missing(name, "sensor unplugged")
        decision = fuse(required_checks(cfg), results)
        assert not decision.live
        assert "missing" in decision.reason


def test_enabled_passive_pack_becomes_required() -> None:
    cfg = LivenessConfig.model_validate({"passive": {"enabled": True}})
    assert "passive_rgb" in required_checks(cfg)
    assert not fuse(required_checks(cfg), _all_pass("active_challenge")).live


def test_extra_check_can_veto_but_not_rescue() -> None:
    required = ("active_challenge",)
    results = _all_pass("active_challenge")
    results["passive_rgb"] = CheckResult.failed("passive_rgb", 0.1, "attack")
    assert not fuse(required, results).live
    failing = {"active_challenge": CheckResult.failed("active_challenge", 0.0, "timeout"), "x": OK("x", 1.0)}
    assert not fuse(required, failing).live


def test_config_refuses_unknown_keys_and_profiles() -> None:
    with pytest.raises(ValidationError):
        LivenessConfig.model_validate({"profile": "rgb+lidar"})
    with pytest.raises(ValidationError):
        LivenessConfig.model_validate({"max_attempt": 3})
    with pytest.raises(ValidationError):
        LivenessConfig.model_validate({"max_attempts": 0})
