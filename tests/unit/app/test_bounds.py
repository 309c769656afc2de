"""Production mode refuses unsafe config values, each with its reason; demo mode keeps the shipped default."""

from __future__ import annotations

from typing import Any

import pytest

from terminal.app import production_problems, refuse_unsafe_production
from terminal.app.bounds import MAX_FACE_FAILURES_PER_HOUR, face_failures_per_hour
from terminal.config import DEFAULT_CONFIG, TerminalConfig, load
from terminal.config.models import EmbedderConfig
from terminal.errors import ConfigError

UPSTREAM = "https://ybj.example.gov.cn/medpay"


def _production(**sections: dict[str, Any]) -> TerminalConfig:
    """The shipped config in production mode with an https upstream, then `sections` changed."""
    config = load(DEFAULT_CONFIG)
    changes: dict[str, Any] = {
        "terminal": config.terminal.model_copy(update={"mode": "production"}),
        "uplink": config.uplink.model_copy(update={"url": UPSTREAM}),
    }
    for name, update in sections.items():
        changes[name] = changes.get(name, getattr(config, name)).model_copy(update=update)
    return config.model_copy(update=changes)


def test_a_safe_production_config_passes() -> None:
    assert production_problems(_production()) == []
    refuse_unsafe_production(_production())


def test_the_shipped_demo_config_is_not_bound() -> None:
    # The README's embedded default: no upstream, demo mode — `make demo` keeps working.
    config = load(DEFAULT_CONFIG)
    assert config.terminal.mode == "demo" and config.uplink.url is None
    assert production_problems(config) == []


def test_a_cosine_threshold_below_the_measured_point_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"threshold 0\.3 is looser"):
        refuse_unsafe_production(_production(identity={"threshold": 0.3}))
    assert production_problems(_production(identity={"threshold": 0.6})) == []  # stricter is fine


def test_a_distance_threshold_above_the_measured_point_is_refused() -> None:
    # The 1.99: for a euclidean embedder a larger distance accepts more strangers.
    models = load(DEFAULT_CONFIG).models
    dlib = models.model_copy(update={"embedder": EmbedderConfig.model_validate({"type": "dlib_resnet"})})
    problems = production_problems(
        _production(identity={"threshold": 1.99}).model_copy(update={"models": dlib})
    )
    assert len(problems) == 1 and "looser" in problems[0] and "distance" in problems[0]


@pytest.mark.parametrize(
    ("failures", "window_s", "pause_s"),
    [(10, 600, 60), (30, 600, 600), (10, 60, 600), (2, 1, 1)],
)
def test_face_pause_settings_allowing_too_many_failures_an_hour_are_refused(
    failures: int, window_s: int, pause_s: int
) -> None:
    identity = {"face_pause_failures": failures, "face_pause_window_s": window_s, "face_pause_s": pause_s}
    problems = production_problems(_production(identity=identity))
    assert len(problems) == 1 and "failed identifications an hour" in problems[0]


def test_the_default_pause_allows_exactly_the_documented_rate() -> None:
    assert face_failures_per_hour(10, 600, 600) == MAX_FACE_FAILURES_PER_HOUR == 60
    # A longer pause still lets 9 failures through every window without pausing.
    assert face_failures_per_hour(10, 600, 3600) == 54
    assert face_failures_per_hour(5, 600, 600) == 30


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_a_service_bound_beyond_loopback_is_refused(host: str) -> None:
    problems = production_problems(_production(service={"host": host}))
    assert len(problems) == 1 and "not loopback" in problems[0]


def test_serve_host_override_is_checked_too() -> None:
    assert any("not loopback" in p for p in production_problems(_production(), host="0.0.0.0"))


def test_plain_http_to_another_machine_is_refused_for_upstream_and_his() -> None:
    problems = production_problems(
        _production(uplink={"url": "http://10.1.2.3:8765"}, session={"his_url": "http://his.hospital.lan"})
    )
    assert len(problems) == 2
    assert "[uplink] url http://10.1.2.3:8765 is plain http://" in problems[0]
    assert "HIS bearer token" in problems[1]


def test_plain_http_on_loopback_stays_allowed() -> None:
    # A local TLS proxy or the reference upstream on this machine: nothing crosses a network.
    config = _production(
        uplink={"url": "http://127.0.0.1:8765"}, session={"his_url": "http://localhost:8766"}
    )
    assert production_problems(config) == []


def test_a_missing_uplink_is_refused_because_no_offline_limits_apply() -> None:
    problems = production_problems(_production(uplink={"url": None}))
    assert len(problems) == 1 and "no offline limits" in problems[0]


def test_every_reason_is_named_at_once() -> None:
    config = _production(uplink={"url": None}, service={"host": "0.0.0.0"}, identity={"threshold": 0.1})
    with pytest.raises(ConfigError) as caught:
        refuse_unsafe_production(config)
    assert str(caught.value).count("\n  - ") == 3
