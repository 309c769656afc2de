"""The served paying step: the kiosk's QR (drawn as SVG), polling, the counter's payment code, cancel.

The app runs over a terminal whose `[payment]` points at the reference gateway (a subprocess).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
from tests.integration.paying_kit import fen
from tests.integration.payment_kit import MERCHANT, WECHAT_CODE, PaymentKit
from tests.integration.service_kit import choose_bill, confirm_shown, reader_identifies

BILL = "DEMO-OP-0001"


@pytest.fixture
def paying_terminal(data_dir: Path, clock: FixedClock, kit: PaymentKit) -> Iterator[Terminal]:
    config = load(DEFAULT_CONFIG)
    payment = config.payment.model_copy(
        update={"url": kit.url, "merchant_id": MERCHANT, "key_file": kit.key_file}
    )
    term = build_terminal(config.model_copy(update={"payment": payment}), data_dir, clock)
    for person in DEMO_PEOPLE:
        term.gallery.upsert_person(person)
    link_demo_credentials(term)
    yield term
    term.close()


@pytest.fixture
def app(paying_terminal: Terminal, tmp_path: Path) -> FastAPI:
    bills = tmp_path / "bills"
    bills.mkdir()
    (bills / "op.json").write_text(SAMPLE_BILL.read_text(encoding="utf-8"), encoding="utf-8")
    return create_app(paying_terminal, bills=FileBillSource(bills), event_interval=0.05)


@pytest.fixture
def http(app: FastAPI) -> Iterator[httpx.Client]:
    with serving(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def confirmed(app: FastAPI, http: httpx.Client) -> dict[str, Any]:
    http.post("/api/session/start")
    reader_identifies(app, DEMO_PEOPLE[2].psn_no)  # 张伟: his account does not cover it all
    shown = choose_bill(http, BILL).json()
    view: dict[str, Any] = confirm_shown(http).json()
    assert view["state"] == "paying", (view.get("receipt"), view.get("bill", {}).get("totals"))
    # The cash due now is the bill's cash share (no upstream here: the local figure).
    assert view["payment"]["cash_due"] == shown["bill"]["totals"]["psn_cash_pay"] != "0.00"
    return view


def test_the_kiosk_shows_a_qr_and_says_paid_only_after_the_phone_paid(
    app: FastAPI, http: httpx.Client, kit: PaymentKit, paying_terminal: Terminal
) -> None:
    paying = confirmed(app, http)
    assert "receipt" not in paying
    shown = http.post("/api/session/pay/qr", json={"session_id": paying["session_id"]}).json()
    payment = shown["payment"]
    assert payment["state"] == "charging" and payment["expires_at"] and payment["poll_s"] > 0
    image = http.get("/api/session/pay/qr.svg")
    assert image.status_code == 200 and image.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in image.content[:200]
    assert http.post("/api/session/pay/poll").json()["payment"]["paid"] is False
    assert kit.pay_qr(payment["code_url"]).status_code == 200
    done = http.post("/api/session/pay/poll").json()
    assert done["state"] == "settled" and done["receipt"]["complete"] is True
    order = kit.orders()[payment["out_trade_no"]]
    assert order["state"] == "SUCCESS" and order["total_fen"] == fen(paying["payment"]["cash_due"])
    assert done["receipt"]["payment"]["transaction_id"] == order["transaction_id"]
    assert paying_terminal.ledger.is_settled(BILL)


def test_the_counter_scans_a_payment_code(app: FastAPI, http: httpx.Client, kit: PaymentKit) -> None:
    paying = confirmed(app, http)
    wrong = http.post(
        "/api/session/pay/code", json={"session_id": paying["session_id"], "auth_code": "99" * 9}
    )
    assert wrong.status_code == 422 and wrong.json()["code"] == "PAYMENT_CODE_INVALID"
    assert kit.orders() == {}  # refused before anything reached the gateway
    done = http.post(
        "/api/session/pay/code", json={"session_id": paying["session_id"], "auth_code": WECHAT_CODE}
    )
    assert done.json()["state"] == "settled"
    assert [o["state"] for o in kit.orders().values()] == ["SUCCESS"]


def test_cancel_while_the_qr_is_shown_charges_nothing(
    app: FastAPI, http: httpx.Client, kit: PaymentKit, paying_terminal: Terminal
) -> None:
    paying = confirmed(app, http)
    shown = http.post("/api/session/pay/qr", json={"session_id": paying["session_id"]}).json()
    ended = http.post("/api/session/cancel").json()
    assert (ended["state"], ended["outcome"]) == ("idle", "not_charged")
    assert kit.orders()[shown["payment"]["out_trade_no"]]["state"] == "CLOSED"
    assert not paying_terminal.ledger.is_settled(BILL)
    # The closed QR cannot be paid any more.
    assert kit.pay_qr(shown["payment"]["code_url"]).status_code == 409
