"""Another process holds the database's write lock during confirm: a typed 503, then the kiosk goes on.

A real second SQLite connection takes BEGIN IMMEDIATE on the terminal's file (as `medpay sync` or a
second settle would); busy_timeout is lowered through the store's test hook so the held lock fails the
step at once. No sleeps: hold the lock, confirm, release.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from devkit.serving import serving
from terminal.app import Terminal
from terminal.demo_data import DEMO_PEOPLE, SAMPLE_BILL, link_demo_credentials
from terminal.service.app import create_app
from terminal.store import audit
from terminal.store import db as store_db
from terminal.store.bill_files import FileBillSource
from terminal.store.db import open_db
from tests.integration.service_kit import choose_bill, confirm_shown, reader_identifies


@pytest.fixture(autouse=True)
def quick_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A held lock fails a write after 20 ms instead of 5 s (read when each connection opens)."""
    monkeypatch.setattr(store_db, "BUSY_TIMEOUT_MS", 20)


@pytest.fixture
def app(terminal: Terminal, tmp_path: Path) -> FastAPI:
    """The service over the sample bill, the demo people enrolled by credential."""
    bills = tmp_path / "bills"
    bills.mkdir()
    (bills / "op.json").write_text(SAMPLE_BILL.read_text(encoding="utf-8"), encoding="utf-8")
    for person in DEMO_PEOPLE:
        terminal.gallery.upsert_person(person)
    link_demo_credentials(terminal)
    return create_app(terminal, bills=FileBillSource(bills), session_timeout=timedelta(seconds=60))


@pytest.fixture
def base_url(app: FastAPI) -> Iterator[str]:
    """The service on 127.0.0.1."""
    with serving(app) as url:
        yield url


def _priced(app: FastAPI, http: httpx.Client) -> None:
    assert http.post("/api/session/start").json()["state"] == "identifying"
    reader_identifies(app, DEMO_PEOPLE[0].psn_no)
    assert choose_bill(http, "DEMO-OP-0001").json()["state"] == "priced"


def _settlements(terminal: Terminal) -> list[str]:
    return [r["chrg_bchno"] for r in terminal.db.query("SELECT chrg_bchno FROM settlements")]


def test_a_confirm_behind_another_writers_lock_is_a_503_and_the_kiosk_recovers(
    app: FastAPI, base_url: str, terminal: Terminal
) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        _priced(app, http)
        other = open_db(terminal.data_dir)  # another process's connection
        other.execute("BEGIN IMMEDIATE")
        try:
            answer = confirm_shown(http)
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert answer.status_code == 503
        assert answer.json()["code"] == "STORE_BUSY" and answer.json()["message_zh"]
        assert answer.headers["Retry-After"] == "2"
        view = http.get("/api/session").json()
        assert (view["state"], view["prompt"]) == ("priced", "confirm_bill"), "not stuck in confirmed"
        assert _settlements(terminal) == []
        # The kiosk goes on: confirming again settles once.
        assert confirm_shown(http).json()["state"] == "settled"
        assert http.post("/api/session/finish").json()["state"] == "idle"
    assert _settlements(terminal) == ["DEMO-OP-0001"]
    assert audit.verify(terminal.db) == []


def test_a_cancel_after_a_locked_confirm_works_and_nothing_is_charged(
    app: FastAPI, base_url: str, terminal: Terminal
) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        _priced(app, http)
        other = open_db(terminal.data_dir)
        other.execute("BEGIN IMMEDIATE")
        try:
            assert confirm_shown(http).status_code == 503
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert http.post("/api/session/cancel").json()["state"] == "idle"
        # The next patient settles the same bill exactly once.
        _priced(app, http)
        assert confirm_shown(http).json()["state"] == "settled"
    assert _settlements(terminal) == ["DEMO-OP-0001"]
