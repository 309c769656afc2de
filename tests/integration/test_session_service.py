"""The checkout session driven over real HTTP: endpoints, the event stream, token auth, the counter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from devkit.serving import serving
from firmware_bridge.simulate import DEMO_EC_TOKEN
from terminal.app import Terminal
from terminal.demo_data import DEMO_PEOPLE, SAMPLE_BILL, link_demo_credentials
from terminal.domain import CertType
from terminal.errors import SessionStateError
from terminal.id_numbers import with_check_digit
from terminal.service.app import create_app
from terminal.store.bill_files import FileBillSource
from tests.fakes import FixedClock
from tests.integration.service_kit import choose_bill, confirm_shown, reader_identifies

CASHIER = "cashier-secret"
TECH = "tech-secret"


@pytest.fixture
def bills_dir(tmp_path: Path) -> Path:
    """A bill folder holding the sample outpatient bill."""
    folder = tmp_path / "bills"
    folder.mkdir()
    (folder / "op.json").write_text(SAMPLE_BILL.read_text(encoding="utf-8"), encoding="utf-8")
    return folder


@pytest.fixture
def app(terminal: Terminal, bills_dir: Path) -> FastAPI:
    """The app with a session, a file bill source and tokens."""
    for person in DEMO_PEOPLE:
        terminal.gallery.upsert_person(person)
    link_demo_credentials(terminal)
    return create_app(
        terminal,
        bills=FileBillSource(bills_dir),
        cashier_token=CASHIER,
        technician_token=TECH,
        session_timeout=timedelta(seconds=60),
        event_interval=0.1,
    )


@pytest.fixture
def base_url(app: FastAPI) -> Iterator[str]:
    """The service on 127.0.0.1."""
    with serving(app) as url:
        yield url


def test_qr_checkout_over_http_settles_and_lists_no_settled_bill(
    app: FastAPI, base_url: str, terminal: Terminal
) -> None:
    psn_no = DEMO_PEOPLE[0].psn_no
    with httpx.Client(base_url=base_url, timeout=30) as http:
        assert http.post("/api/session/start").json()["state"] == "identifying"
        view = reader_identifies(app, psn_no)
        assert (view["state"], view["result"]) == ("identified", "pass")
        bills = http.get("/api/session/bills").json()["bills"]
        assert [b["chrg_bchno"] for b in bills] == ["DEMO-OP-0001"]
        view = choose_bill(http, "DEMO-OP-0001").json()
        assert view["state"] == "priced" and view["person"]["name"] == "李*国"
        view = confirm_shown(http).json()
        assert view["state"] == "settled" and view["receipt"]["msgid"]
        assert http.post("/api/session/finish").json()["state"] == "idle"
        reader_identifies(app, psn_no)
        assert http.get("/api/session/bills").json()["bills"] == []
    assert terminal.ledger.is_settled("DEMO-OP-0001")


NOTHING = {"session_id": "x", "chrg_bchno": "DEMO-OP-0001", "amounts_digest": "0" * 32}


def test_confirm_out_of_order_is_a_409(base_url: str) -> None:
    response = httpx.post(f"{base_url}/api/session/confirm", json=NOTHING)
    assert response.status_code == 409 and response.json()["code"] == "SESSION_STATE"


def test_typed_qr_tokens_and_card_numbers_are_refused(base_url: str) -> None:
    for method, value in (("qr", DEMO_EC_TOKEN), ("card", "H43030201")):
        response = httpx.post(f"{base_url}/api/session/credential", json={"method": method, "value": value})
        assert response.status_code == 422, "QR codes and cards are read by the terminal's readers"


def test_an_error_answers_its_code_and_both_messages_never_only_english(base_url: str) -> None:
    answer = httpx.post(f"{base_url}/api/session/confirm", json=NOTHING).json()
    assert set(answer) == {"code", "message_zh", "message_en", "detail"}
    assert (answer["code"], answer["message_zh"], answer["message_en"]) == (
        SessionStateError.code,
        SessionStateError.message_zh,
        SessionStateError.message_en,
    )
    assert "重新开始" in answer["message_zh"] and "start again" in answer["message_en"]


def test_malformed_id_number_is_a_409_with_a_plain_message(base_url: str) -> None:
    response = httpx.post(f"{base_url}/api/session/credential", json={"method": "id", "value": "123"})
    assert response.status_code == 409 and "18 characters" in response.json()["detail"]


def test_event_stream_reports_state_changes_and_timeouts(base_url: str, clock: FixedClock) -> None:
    states: list[str] = []
    with (
        httpx.Client(base_url=base_url, timeout=30) as http,
        http.stream("GET", "/api/session/events") as events,
    ):
        for line in events.iter_lines():
            if not line.startswith("data: "):
                continue
            view = json.loads(line[6:])
            states.append(view["state"] + (f"/{view['outcome']}" if view["outcome"] else ""))
            if len(states) == 1:
                http.post("/api/session/start")
            elif len(states) == 2:
                clock.at += timedelta(seconds=61)
            else:
                break
    assert states == ["idle", "identifying", "idle/timeout"]


def test_cashier_and_technician_endpoints_need_their_tokens(base_url: str) -> None:
    code = "XA10BAE054A001010100001"
    assert httpx.get(f"{base_url}/api/counter/catalog/{code}").status_code == 401
    wrong = {"Authorization": f"Bearer {TECH}"}
    assert httpx.get(f"{base_url}/api/counter/catalog/{code}", headers=wrong).status_code == 401
    item = httpx.get(
        f"{base_url}/api/counter/catalog/{code}", headers={"Authorization": f"Bearer {CASHIER}"}
    ).json()
    assert item["cls"] == "甲" and item["pric"] == "12.80"
    assert httpx.get(f"{base_url}/api/tech/diagnostics").status_code == 401
    diag = httpx.get(f"{base_url}/api/tech/diagnostics", headers={"Authorization": f"Bearer {TECH}"}).json()
    assert diag["gallery_size"] == 0 and diag["outbox_pending"] == 0
    # the threshold in force with its metric: SFace's point measured on the default detector's (yunet)
    # chips (the bound covers MTCNN-enrolled templates too), the 1:N cap derived from its FMR:
    # 0.01 / 9.061e-5
    identity = diag["identity"]
    assert (identity["embedder"], identity["metric"], identity["threshold"]) == ("sface", "cosine", 0.485)
    assert identity["max_gallery_for_1n"] == identity["derived_max_gallery_for_1n"] == 110
    assert diag["session"]["liveness"] == "configured", "medpay serve runs the terminal's liveness stage"


def test_counter_basket_with_a_special_disease_line_settles_by_card(app: FastAPI, base_url: str) -> None:
    auth = {"Authorization": f"Bearer {CASHIER}"}
    with httpx.Client(base_url=base_url, timeout=30) as http:
        http.post("/api/session/start")
        basket = {
            "items": [
                {"code": "XA10BAE054A001010100001", "cnt": "2", "pric": "12.80", "dise_codg": "M03900"},
                {"code": "XJ01CAA012E001010100003", "cnt": "1", "pric": "9.60"},
            ]
        }
        view = http.post("/api/counter/basket", json=basket, headers=auth).json()
        assert view["state"] == "identifying" and view["bill_pending"].startswith("RX")
        view = reader_identifies(app, DEMO_PEOPLE[0].psn_no, CertType.SOCIAL_SECURITY_CARD)
        assert view["state"] == "priced", view
        assert view["bill"]["special_disease"] is True and view["bill"]["med_type"] == "14"
        assert view["bill"]["lines"][0]["special"] is True
        assert confirm_shown(http).json()["state"] == "settled"


def test_pages_are_served(base_url: str) -> None:
    for page in ("kiosk", "counter", "tech"):
        response = httpx.get(f"{base_url}/{page}")
        assert response.status_code == 200 and "text/html" in response.headers["content-type"]


def test_the_technician_sees_and_lifts_the_terminal_wide_pause(base_url: str) -> None:
    auth = {"Authorization": f"Bearer {TECH}"}
    with httpx.Client(base_url=base_url, timeout=30) as http:
        assert http.get("/api/tech/identity").status_code == 401
        for checkout in range(2):  # five wrong ID numbers per checkout, ten fill the window
            http.post("/api/session/cancel")
            http.post("/api/session/start")
            for n in range(5):
                number = with_check_digit(f"11010119900{checkout + 3}01{n:02d}0")
                answer = http.post("/api/session/credential", json={"method": "id", "value": number})
                assert answer.status_code == 200 and answer.json()["prompt"] == "face_verify"
        state = http.get("/api/tech/identity", headers=auth).json()
        assert state["paused_until"] is not None and state["failures_in_window"] == 10
        view = http.get("/api/session").json()
        assert view["face_paused_until"] is not None and "face" not in view["methods"]
        refused = http.post("/api/session/face/start")
        assert refused.status_code == 409 and refused.json()["code"] == "FACE_PAUSED"
        lifted = http.post("/api/tech/identity/reset", headers=auth).json()
        assert lifted["paused_until"] is None and lifted["failures_in_window"] == 0
        assert http.get("/api/session").json()["face_available"]
