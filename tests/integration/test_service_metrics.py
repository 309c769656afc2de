"""/metrics on a served app: Prometheus text (settlements, attempts, outbox, latency); a registry per app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from devkit.serving import serving
from terminal.app import Terminal
from terminal.demo_data import DEMO_PEOPLE, SAMPLE_BILL, link_demo_credentials
from terminal.service.app import create_app
from terminal.store.attempts import AttemptJournal
from terminal.store.bill_files import FileBillSource
from tests.integration.service_kit import choose_bill, confirm_shown, reader_identifies


@pytest.fixture
def app(terminal: Terminal, tmp_path: Path) -> FastAPI:
    """The app over the test terminal, a file bill source holding the sample bill."""
    for person in DEMO_PEOPLE:
        terminal.gallery.upsert_person(person)
    link_demo_credentials(terminal)
    bills = tmp_path / "bills"
    bills.mkdir()
    (bills / "op.json").write_text(SAMPLE_BILL.read_text(encoding="utf-8"), encoding="utf-8")
    return create_app(terminal, bills=FileBillSource(bills), event_interval=0.05)


@pytest.fixture
def base_url(app: FastAPI) -> Iterator[str]:
    """The service on 127.0.0.1."""
    with serving(app) as url:
        yield url


def _samples(http: httpx.Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Each sample of a scrape by (name, labels)."""
    answer = http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def test_a_scrape_counts_the_settlement_attempts_outbox_and_latency(
    app: FastAPI, base_url: str, terminal: Terminal
) -> None:
    AttemptJournal(terminal.db).failed("s-1", "credential", terminal.clock.now(), "typed ID mistyped")
    AttemptJournal(terminal.db).failed("s-1", "face", terminal.clock.now(), "liveness: no blink")
    with httpx.Client(base_url=base_url, timeout=30) as http:
        before = _samples(http)
        assert before[("medpay_settlements_total", frozenset())] == 0
        assert before[("medpay_outbox_depth", frozenset())] == 0
        assert ("medpay_outbox_oldest_age_seconds", frozenset()) not in before
        http.post("/api/session/start")
        reader_identifies(app, DEMO_PEOPLE[0].psn_no)
        choose_bill(http, "DEMO-OP-0001")
        assert confirm_shown(http).json()["state"] == "settled"
        after = _samples(http)
    assert after[("medpay_settlements_total", frozenset())] == 1
    assert after[("medpay_outbox_depth", frozenset())] == 1
    assert after[("medpay_outbox_entries", frozenset({("state", "pending")}))] == 1
    assert after[("medpay_outbox_oldest_age_seconds", frozenset())] >= 0
    assert after[("medpay_outbox_failed_deliveries", frozenset())] == 0
    fail = frozenset({("kind", "credential"), ("outcome", "fail")})
    assert after[("medpay_identity_attempts", fail)] == 1
    assert after[("medpay_face_failures", frozenset({("reason", "liveness: no blink")}))] == 1
    assert after[("medpay_terminal_busy", frozenset())] == 0
    assert after[("medpay_event_streams_open", frozenset())] == 0
    confirmed = frozenset({("method", "POST"), ("route", "/api/session/confirm"), ("status", "200")})
    assert after[("medpay_http_request_duration_seconds_count", confirmed)] == 1
    scraped = frozenset({("method", "GET"), ("route", "/metrics"), ("status", "200")})
    assert after[("medpay_http_request_duration_seconds_count", scraped)] == 1  # the first scrape


def test_a_scrape_while_the_terminal_is_held_leaves_out_the_database(
    base_url: str, terminal: Terminal
) -> None:
    held_for = terminal.config.service.lock_wait_s
    assert held_for > 0
    with httpx.Client(base_url=base_url, timeout=30) as http, terminal.lock:
        samples = _samples(http)
    assert samples[("medpay_terminal_busy", frozenset())] == 1
    assert ("medpay_settlements_total", frozenset()) not in samples


def test_two_apps_in_one_process_keep_their_own_registries(terminal: Terminal) -> None:
    first, second = create_app(terminal), create_app(terminal)
    assert first.state.metrics.registry is not second.state.metrics.registry
    with serving(first) as url, httpx.Client(base_url=url, timeout=30) as http:
        http.get("/health/live")
        assert ("medpay_settlements_total", frozenset()) in _samples(http)
    live = frozenset({("method", "GET"), ("route", "/health/live"), ("status", "200")})
    families = text_string_to_metric_families(second.state.metrics.exposition().decode())
    counts = {(s.name, frozenset(s.labels.items())): s.value for family in families for s in family.samples}
    assert ("medpay_http_request_duration_seconds_count", live) not in counts


def test_the_separate_metrics_listener_serves_only_the_scrape_and_liveness(
    app: FastAPI, base_url: str, terminal: Terminal
) -> None:
    from terminal.service.app import create_metrics_app
    from terminal.service.listener import BackgroundListener

    listener = BackgroundListener(create_metrics_app(app), "127.0.0.1", 0).start()
    try:
        with httpx.Client(base_url=base_url, timeout=30) as main:
            assert main.post("/api/session/start").status_code == 200
            reader_identifies(app, DEMO_PEOPLE[0].psn_no)
            assert choose_bill(main, "DEMO-OP-0001").status_code == 200
        with httpx.Client(base_url=f"http://127.0.0.1:{listener.port}", timeout=30) as http:
            samples = _samples(http)
            assert ("medpay_outbox_depth", frozenset()) in samples
            assert http.get("/health/live").json()["status"] == "live"
            # Nothing that reads a person or changes state is on this listener.
            absent = [("GET", "/api/session"), ("POST", "/api/session/start"), ("GET", "/health")]
            absent += [("GET", "/tech"), ("GET", "/openapi.json"), ("GET", "/health/ready")]
            for method, path in absent:
                assert http.request(method, path).status_code == 404, path
            # The scrape counts the main listener's requests: one registry per terminal's app.
            latency = [k for k in samples if k[0] == "medpay_http_request_duration_seconds_count"]
            assert any(("route", "/api/session/bill") in labels for _, labels in latency)
    finally:
        listener.stop()
