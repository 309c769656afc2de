"""The served app never hangs on the terminal lock: busy answers 503 with Retry-After; streams are capped."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from devkit.serving import serving
from terminal.app import Terminal, build_terminal
from terminal.config import DEFAULT_CONFIG, load
from terminal.demo_data import DEMO_PEOPLE, SAMPLE_BILL, link_demo_credentials
from terminal.service.app import create_app
from terminal.store.bill_files import FileBillSource
from tests.fakes import FixedClock
from tests.integration.service_kit import choose_bill, confirm_shown, reader_identifies

CONCURRENT = 100
# What each of the concurrent clients asks: the patient's screen, a tap, and the health checks.
MIX = [
    ("GET", "/api/session"),
    ("POST", "/api/session/start"),
    ("POST", "/api/session/cancel"),
    ("GET", "/health"),
    ("GET", "/health/live"),
]


@pytest.fixture
def busy_terminal(data_dir: Path, clock: FixedClock) -> Iterator[Terminal]:
    """A terminal whose requests wait 0.2 s for the lock, with two event streams of 1 s at most."""
    config = load(DEFAULT_CONFIG)
    service = config.service.model_copy(update={"lock_wait_s": 0.2, "max_streams": 2, "stream_max_s": 1.0})
    term = build_terminal(config.model_copy(update={"service": service}), data_dir, clock)
    for person in DEMO_PEOPLE:
        term.gallery.upsert_person(person)
    link_demo_credentials(term)
    yield term
    term.close()


@pytest.fixture
def app(busy_terminal: Terminal, tmp_path: Path) -> FastAPI:
    """The app over the busy terminal, a file bill source holding the sample bill."""
    bills = tmp_path / "bills"
    bills.mkdir()
    (bills / "op.json").write_text(SAMPLE_BILL.read_text(encoding="utf-8"), encoding="utf-8")
    return create_app(busy_terminal, bills=FileBillSource(bills), event_interval=0.05)


@pytest.fixture
def base_url(app: FastAPI) -> Iterator[str]:
    """The service on 127.0.0.1."""
    with serving(app) as url:
        yield url


def _ask(base_url: str, n: int) -> httpx.Response:
    method, path = MIX[n % len(MIX)]
    return httpx.request(method, base_url + path, timeout=30)


def test_a_burst_while_the_terminal_is_held_answers_every_request(
    base_url: str, busy_terminal: Terminal
) -> None:
    assert httpx.get(f"{base_url}/health").status_code == 200  # /health has counts to fall back on
    with busy_terminal.lock, ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
        answers = list(pool.map(lambda n: _ask(base_url, n), range(CONCURRENT)))
    by_path: dict[str, set[int]] = {}
    for n, answer in enumerate(answers):
        by_path.setdefault(MIX[n % len(MIX)][1], set()).add(answer.status_code)
        if answer.status_code == 503:
            body = answer.json()
            assert body["code"] == "TERMINAL_BUSY" and body["message_zh"] and body["message_en"]
            assert answer.headers["Retry-After"] == "1"
        else:
            assert answer.status_code == 200, answer.text
    # Everything that needs the terminal was refused while the test held it; the health checks were not.
    assert by_path["/api/session"] == by_path["/api/session/start"] == {503}
    assert by_path["/health"] == by_path["/health/live"] == {200}
    # Released: the service answers normally again, and a checkout goes through.
    with httpx.Client(base_url=base_url, timeout=30) as http:
        assert http.post("/api/session/start").json()["state"] == "identifying"
        assert http.get("/api/session").status_code == 200
        assert http.get("/health/ready").json()["status"] == "ready"


def test_a_checkout_settles_after_the_lock_was_held(
    app: FastAPI, base_url: str, busy_terminal: Terminal
) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        http.post("/api/session/start")
        reader_identifies(app, DEMO_PEOPLE[0].psn_no)
        view = choose_bill(http, "DEMO-OP-0001").json()
        shown = {
            "session_id": view["session_id"],
            "chrg_bchno": view["bill"]["chrg_bchno"],
            "amounts_digest": view["amounts_digest"],
        }
        with busy_terminal.lock:
            refused = http.post("/api/session/confirm", json=shown)
        assert refused.status_code == 503 and refused.json()["code"] == "TERMINAL_BUSY"
        assert not busy_terminal.ledger.is_settled("DEMO-OP-0001")
        assert confirm_shown(http).json()["state"] == "settled"
    assert busy_terminal.ledger.is_settled("DEMO-OP-0001")


def test_event_streams_are_capped_and_end_by_themselves(app: FastAPI, base_url: str) -> None:
    svc = app.state.service
    with httpx.Client(base_url=base_url, timeout=30) as http:
        with http.stream("GET", "/api/session/events") as first, http.stream("GET", "/api/session/events"):
            assert first.status_code == 200
            third = http.get("/api/session/events")
            assert third.status_code == 503 and third.headers["Retry-After"] == "1"
            assert third.json()["code"] == "TERMINAL_BUSY"
            # The stream runs out after stream_max_s: its body ends without the client closing it.
            body = "".join(first.iter_text())
            assert "event: state" in body
        # Both slots are free again: a new stream opens.
        with http.stream("GET", "/api/session/events") as again:
            assert again.status_code == 200
            assert "event: state" in next(again.iter_text())
    assert svc.streams.limit == 2


def test_ready_says_busy_while_held_and_not_writable_when_the_database_refuses(
    base_url: str, busy_terminal: Terminal
) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        ready = http.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"]["database"] == "writable"
        assert ready.json()["checks"]["outbox"]["pending"] == 0
        with busy_terminal.lock:
            busy = http.get("/health/ready")
            live = http.get("/health/live")
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
        assert busy.json()["code"] == "TERMINAL_BUSY" and busy.json()["status"] == "not ready"
        assert live.json()["status"] == "live"
        busy_terminal.db.execute("PRAGMA query_only = ON")
        try:
            refused = http.get("/health/ready")
        finally:
            busy_terminal.db.execute("PRAGMA query_only = OFF")
        assert refused.status_code == 503 and refused.json()["code"] == "STORE_READ_ONLY"
        assert "cannot be written" in refused.json()["checks"]["database"]
        assert http.get("/health/ready").status_code == 200


def test_ready_says_not_ready_once_the_upstream_refused_the_audit_head(
    base_url: str, busy_terminal: Terminal
) -> None:
    from terminal.domain import AuditHead
    from terminal.store.audit_heads import AuditHeadStore

    heads = AuditHeadStore(busy_terminal.db)
    with httpx.Client(base_url=base_url, timeout=30) as http:
        assert http.get("/health/ready").json()["checks"]["audit_head"] == "never reported"
        with busy_terminal.lock:
            heads.note(
                AuditHead(1, "ab" * 32), busy_terminal.clock.now(), accepted=False, reason="behind seq 9"
            )
        refused = http.get("/health/ready")
    assert refused.status_code == 503 and refused.json()["code"] == "AUDIT_HEAD_REFUSED"
    assert "behind seq 9" in refused.json()["checks"]["audit_head"]
