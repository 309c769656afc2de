"""Thresholds and the 1:N cap come from the manifest's measurements; config may only make them stricter."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from terminal.app import build_terminal, embedder_operating_point
from terminal.config import DEFAULT_CONFIG, IdentityConfig, TerminalConfig, load
from terminal.errors import ConfigError, ModelError
from terminal.vision.manifest import ModelEntry, load_manifest
from terminal.vision.operating_point import FALSE_CANDIDATE_BUDGET, gallery_cap, operating_point
from tests.conftest import MODELS
from tests.fakes import FixedClock

MANIFEST = load_manifest(MODELS)
SFACE = MANIFEST.entry("sface")
DLIB = MANIFEST.entry("dlib_resnet")


def _config(embedder: str = "sface", detector: str = "yunet", **identity: Any) -> TerminalConfig:
    raw = load(DEFAULT_CONFIG).model_dump()
    raw["models"]["embedder"] = {"type": embedder}
    raw["models"]["detector"] = {"type": detector}
    raw["identity"].update(identity)
    return TerminalConfig.model_validate(raw)


def test_the_shipped_embedders_declare_their_measured_operating_points() -> None:
    # docs/identity.md: chosen for FMR <= 1e-4 on SCUT half 0, upper 95 % bound measured on half 1
    assert (SFACE.metric, SFACE.threshold) == ("cosine", 0.484)
    assert (DLIB.metric, DLIB.threshold) == ("euclidean", 0.329)
    assert SFACE.fmr is not None and 7.2e-5 < SFACE.fmr <= 1.01e-4
    assert DLIB.fmr is not None and 9.0e-5 < DLIB.fmr <= 1.22e-4
    assert SFACE.measured_with == DLIB.measured_with == "mtcnn"
    # the same protocol on the shipped detector's chips (YuNet's boxes, O-Net's landmarks)
    on_yunet = SFACE.for_detector("yunet")
    assert (on_yunet.threshold, on_yunet.measured_with) == (0.485, "yunet")
    # its bound also covers templates enrolled on MTCNN chips (gallery mtcnn, probe yunet: Wilson 9.0609e-5)
    assert on_yunet.fmr is not None and 9.06e-5 < on_yunet.fmr <= 9.07e-5


def test_what_the_shipped_config_runs_is_provisioned_by_default() -> None:
    config = load(DEFAULT_CONFIG)
    assert MANIFEST.entry(config.models.embedder.type).default, "medpay-provision models must install it"
    assert all(MANIFEST.entry(f"mtcnn_{net}").default for net in ("pnet", "rnet", "onet"))


@pytest.mark.parametrize("detector", ["yunet", "mtcnn"])
def test_the_default_config_runs_sface_at_its_manifest_point_with_the_derived_cap(detector: str) -> None:
    config = load(DEFAULT_CONFIG) if detector == "yunet" else _config(detector=detector)
    assert config.models.detector.type == detector
    point = embedder_operating_point(config)
    measured = SFACE.for_detector(detector)
    assert point.embedder == "sface" and point.metric == "cosine"
    assert point.threshold == point.measured_threshold == measured.threshold
    assert measured.fmr is not None
    cap = math.floor(FALSE_CANDIDATE_BUDGET / measured.fmr)
    assert point.max_gallery_for_1n == point.derived_max_gallery == cap
    # the cap keeps a stranger's expected false candidates within the budget, one more person would not
    assert point.max_gallery_for_1n * measured.fmr <= FALSE_CANDIDATE_BUDGET
    assert (point.max_gallery_for_1n + 1) * measured.fmr > FALSE_CANDIDATE_BUDGET


def test_the_terminal_never_matches_on_a_detector_s_chips_at_another_detector_s_threshold() -> None:
    assert embedder_operating_point(_config(detector="mtcnn")).threshold == 0.484
    assert embedder_operating_point(_config(detector="yunet")).threshold == 0.485
    unmeasured = SFACE.for_detector("scrfd")  # an operator pack's detector: nobody measured sface on it
    assert (unmeasured.threshold, unmeasured.fmr) == (None, None)
    with pytest.raises(ModelError, match=r"no measured threshold and fmr .* for the scrfd detector's chips"):
        operating_point(unmeasured, IdentityConfig(), "cosine")


def test_gallery_cap_arithmetic() -> None:
    assert gallery_cap(1e-4) == 100, "0.01 / 1e-4 is exactly 100 people despite binary rounding"
    assert gallery_cap(1.214e-4) == 82
    assert gallery_cap(1e-4, budget=0.001) == 10
    assert gallery_cap(0.5) == 1, "never below one person"
    with pytest.raises(ValueError):
        gallery_cap(0.0)


@pytest.mark.parametrize(
    ("embedder", "stricter", "looser"),
    [("sface", 0.55, 0.45), ("dlib_resnet", 0.30, 0.5)],
    ids=["cosine: higher is stricter", "euclidean: lower is stricter"],
)
def test_config_may_tighten_the_threshold_in_the_metric_direction_never_loosen_it(
    embedder: str, stricter: float, looser: float
) -> None:
    point = embedder_operating_point(_config(embedder, threshold=stricter))
    assert point.threshold == stricter
    measured = MANIFEST.entry(embedder).for_detector("yunet").threshold
    assert embedder_operating_point(_config(embedder, threshold=measured)).threshold == measured
    with pytest.raises(ConfigError, match=rf"threshold {looser} is looser than .*{measured}.*FMR") as caught:
        embedder_operating_point(_config(embedder, threshold=looser))
    assert "accepts more strangers" in str(caught.value)


def test_config_may_lower_the_1n_cap_but_not_raise_it() -> None:
    assert embedder_operating_point(_config(max_gallery_for_1n=20)).max_gallery_for_1n == 20
    with pytest.raises(ConfigError, match=r"max_gallery_for_1n 5000 is above the 99 people"):
        embedder_operating_point(_config(detector="mtcnn", max_gallery_for_1n=5000))
    with pytest.raises(ConfigError, match=r"max_gallery_for_1n 111 is above the 110 people"):
        embedder_operating_point(_config(detector="yunet", max_gallery_for_1n=111))


def test_the_composition_root_refuses_a_looser_threshold_when_it_builds_the_identifier(
    tmp_path: Path,
) -> None:
    terminal = build_terminal(_config(threshold=0.4), tmp_path / "data", FixedClock())
    try:
        with pytest.raises(ConfigError, match=r"0\.485"):
            _ = terminal.identifier
    finally:
        terminal.close()


def _entry(**changes: Any) -> dict[str, Any]:
    return {**SFACE.model_dump(), **changes}


def test_an_embedder_without_a_measurement_cannot_match() -> None:
    bare = ModelEntry.model_validate(_entry(threshold=None, fmr=None))
    with pytest.raises(ModelError, match="no measured threshold"):
        operating_point(bare, IdentityConfig(), "cosine")
    with pytest.raises(ModelError, match="metric cosine"):
        operating_point(SFACE, IdentityConfig(), "euclidean")


def test_a_threshold_without_its_rate_or_metric_is_an_invalid_manifest_entry() -> None:
    with pytest.raises(ValueError, match="together"):
        ModelEntry.model_validate(_entry(fmr=None))
    with pytest.raises(ValueError, match="metric"):
        ModelEntry.model_validate(_entry(metric=None))
