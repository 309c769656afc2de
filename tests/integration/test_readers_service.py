"""Readers held by the service, driven by the real simulators over socket://: no fakes of pyserial.

The ecToken resolver is a small fake here (the upstream's single-use tokens are tested with the
credentials); the card is verified by the root's real verifier against the simulator's chip; everything
else (simulators, TCP, the readers, the worker, the service over HTTP) is real.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from devkit.serving import serving
from firmware_bridge.endpoints import TcpEndpoint
from firmware_bridge.link import LinkConfig
from firmware_bridge.simulate import (
    DEMO_CARD,
    DEMO_EC_TOKEN,
    DEMO_ISSUED_CARD,
    CardSimulator,
    LineDeviceSimulator,
)
from terminal.app import Terminal
from terminal.app.readers import build_readers, catalog_lookup
from terminal.config import CardDevice, DevicesSection, ScannerDevice
from terminal.demo_data import DEMO_PEOPLE, SAMPLE_BILL, link_demo_credentials
from terminal.domain import CertType, IdentityClaim
from terminal.service.app import create_app
from terminal.store.bill_files import FileBillSource
from tests.integration.service_kit import choose_bill, confirm_shown

CASHIER = {"Authorization": "Bearer cashier-secret"}
TECH = {"Authorization": "Bearer tech-secret"}
WAIT = 15.0  # long-poll bound: each wait ends as soon as the state changes; nothing asserts on time
FAST = LinkConfig(read_timeout=0.02, backoff_initial=0.02, backoff_max=0.2)
METFORMIN = "XA10BAE054A001010100001"
INSULIN = "XA10ABA088B002010100002"
PSN_NO = DEMO_PEOPLE[0].psn_no


class DemoTokens:
    """Stands in for the upstream resolver: the simulator's demo token (and test tokens) name 李建国."""

    def __init__(self) -> None:
        self.resolved: list[str] = []

    def resolve(self, token: str) -> IdentityClaim:
        self.resolved.append(token)
        return IdentityClaim(CertType.EC_TOKEN, DEMO_EC_TOKEN, psn_no=PSN_NO)


@dataclass
class Counter:
    """The served terminal and its simulated readers."""

    url: str
    http: httpx.Client
    qr: LineDeviceSimulator
    card: CardSimulator
    barcode: LineDeviceSimulator
    endpoints: dict[str, TcpEndpoint]
    tokens: DemoTokens

    def readers(self, condition: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Long-poll the technician's reader view until condition holds."""
        return _until(self.http, "/api/tech/readers", TECH, condition)

    def basket(self, condition: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Long-poll the counter basket until condition holds."""
        return _until(self.http, "/api/counter/basket", CASHIER, condition)

    def reader(self, name: str) -> dict[str, Any]:
        state = self.http.get("/api/tech/readers", headers=TECH).json()
        return next(r for r in state["readers"] if r["name"] == name)


Condition = Callable[[dict[str, Any]], bool]


def _until(http: httpx.Client, path: str, headers: dict[str, str], condition: Condition) -> dict[str, Any]:
    state = http.get(path, headers=headers).json()
    while not condition(state):
        since = state["version"]
        state = http.get(path, headers=headers, params={"after": since, "wait": WAIT}).json()
        assert state["version"] != since, f"no progress within {WAIT}s: {state}"
    return state


def _reader(state: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in state["readers"] if r["name"] == name)


@pytest.fixture
def counter(terminal: Terminal, tmp_path: Path) -> Iterator[Counter]:
    """The service over a terminal whose QR, card and barcode readers are simulators on TCP."""
    endpoints = {name: TcpEndpoint() for name in ("qr", "card", "barcode")}
    for endpoint in endpoints.values():
        endpoint.start()
    devices = DevicesSection(
        qr=ScannerDevice(url=endpoints["qr"].url),
        card=CardDevice(url=endpoints["card"].url),
        barcode=ScannerDevice(url=endpoints["barcode"].url),
        card_issuers=terminal.config.devices.card_issuers,  # the shipped development issuer (demo mode)
    )
    terminal.config = terminal.config.model_copy(update={"devices": devices})
    # The readers the root builds, with short reconnect backoffs so a replug is seen promptly.
    terminal.readers = build_readers(devices, catalog_lookup(terminal.counter_items), terminal.clock, FAST)
    for person in DEMO_PEOPLE:
        terminal.gallery.upsert_person(person)
    link_demo_credentials(terminal)
    bills = tmp_path / "bills"
    bills.mkdir()
    (bills / "op.json").write_text(SAMPLE_BILL.read_text(encoding="utf-8"), encoding="utf-8")
    tokens = DemoTokens()
    app = create_app(
        terminal, bills=FileBillSource(bills), cashier_token="cashier-secret",
        technician_token="tech-secret", session_timeout=timedelta(seconds=300), event_interval=0.1,
        ec_tokens=tokens,
    )  # fmt: skip
    try:
        with serving(app) as url, httpx.Client(base_url=url, timeout=WAIT + 10) as http:
            rig = Counter(
                url, http, LineDeviceSimulator(endpoints["qr"]), CardSimulator(endpoints["card"]),
                LineDeviceSimulator(endpoints["barcode"]), endpoints, tokens,
            )  # fmt: skip
            for endpoint in endpoints.values():
                assert endpoint.wait_client(WAIT)
            yield rig
    finally:
        for endpoint in endpoints.values():  # the replug test swaps its endpoint into this dict
            endpoint.stop()


def test_a_barcode_scan_from_the_simulator_fills_the_counter_basket(counter: Counter) -> None:
    counter.barcode.scan(METFORMIN)
    counter.barcode.scan(METFORMIN)
    basket = counter.basket(lambda b: bool(b["lines"]) and b["lines"][0]["cnt"] == "2")
    assert [(line["code"], line["cnt"]) for line in basket["lines"]] == [(METFORMIN, "2")]
    assert basket["total"] == "25.60"
    counter.barcode.scan("6920152400012")  # a valid GTIN the catalogue does not know
    basket = counter.basket(lambda b: b["notice"] is not None)
    assert "6920152400012" in basket["notice"] and len(basket["lines"]) == 1


def test_the_basket_needs_the_cashier_token(counter: Counter) -> None:
    assert counter.http.get("/api/counter/basket").status_code == 401
    assert counter.http.get("/api/tech/readers").status_code == 401
    assert counter.http.get("/api/tech/readers", headers=CASHIER).status_code == 401


def test_a_scan_after_the_basket_was_priced_starts_a_new_bill_the_patient_must_see(counter: Counter) -> None:
    http = counter.http
    http.post("/api/counter/basket/lines", json={"code": METFORMIN}, headers=CASHIER).raise_for_status()
    items = [{"code": METFORMIN, "cnt": "1", "pric": "12.80"}]
    counter.qr.scan(DEMO_EC_TOKEN)
    counter.readers(lambda s: _reader(s, "qr")["events"] >= 1)
    view = http.post("/api/counter/basket", json={"items": items}, headers=CASHIER).json()
    assert view["state"] == "priced"
    priced_bchno = view["bill"]["chrg_bchno"]
    basket = http.get("/api/counter/basket", headers=CASHIER).json()
    assert basket["locked"] and basket["chrg_bchno"] == priced_bchno
    counter.barcode.scan(INSULIN)
    basket = counter.basket(lambda b: len(b["lines"]) == 2)
    assert basket["chrg_bchno"] != priced_bchno and not basket["locked"]
    assert basket["replaces"] == priced_bchno
    # the patient's screen still shows the bill that was priced, unchanged
    shown = http.get("/api/session").json()
    assert shown["bill"]["chrg_bchno"] == priced_bchno and len(shown["bill"]["lines"]) == 1
    # The cashier sends the new basket: a confirm of what the patient saw before is refused.
    items.append({"code": INSULIN, "cnt": "1", "pric": str(basket["lines"][1]["pric"])})
    assert http.post("/api/counter/basket", json={"items": items}, headers=CASHIER).status_code == 200
    stale = {
        "session_id": shown["session_id"],
        "chrg_bchno": shown["bill"]["chrg_bchno"],
        "amounts_digest": shown["amounts_digest"],
    }
    refused = http.post("/api/session/confirm", json=stale)
    assert refused.status_code == 409 and refused.json()["code"] == "SESSION_CHANGED"
    view = confirm_shown(http).json()
    assert view["state"] == "settled" and view["receipt"]["chrg_bchno"] != priced_bchno


def test_a_qr_scan_from_the_simulator_identifies_the_patient(counter: Counter) -> None:
    counter.qr.scan(DEMO_EC_TOKEN)
    counter.readers(lambda s: _reader(s, "qr")["events"] >= 1)
    view = counter.http.get("/api/session").json()
    assert (view["state"], view["result"]) == ("identified", "pass")
    assert counter.tokens.resolved == [DEMO_EC_TOKEN]


def test_a_scan_while_priced_is_ignored_and_the_technician_sees_why(counter: Counter) -> None:
    http = counter.http
    counter.qr.scan(DEMO_EC_TOKEN)
    counter.readers(lambda s: _reader(s, "qr")["events"] >= 1)
    assert choose_bill(http, "DEMO-OP-0001").json()["state"] == "priced"
    counter.qr.scan("430302ECDEMO0000000000000000000000000999")
    state = counter.readers(lambda s: any("ignored" in n["text"] for n in s["notes"]))
    assert "priced" in next(n["text"] for n in state["notes"] if "ignored" in n["text"])
    assert http.get("/api/session").json()["state"] == "priced"
    assert counter.tokens.resolved == [DEMO_EC_TOKEN]  # the ignored token was not spent upstream


def test_a_card_insertion_identifies_the_patient(counter: Counter) -> None:
    counter.card.insert(DEMO_CARD)
    counter.readers(lambda s: _reader(s, "card")["events"] >= 1)
    view = counter.http.get("/api/session").json()
    assert (view["state"], view["result"]) == ("identified", "pass")


def test_a_cloned_card_is_refused_and_the_technician_sees_why(counter: Counter) -> None:
    # The demo card's serial and certificate on a chip with another key: it cannot answer the challenge.
    counter.card.insert(replace(DEMO_ISSUED_CARD, card_private=bytes(range(32))))
    state = counter.readers(lambda s: _reader(s, "card")["events"] >= 1)
    assert "not accepted" in _reader(state, "card")["last_event"]
    assert counter.http.get("/api/session").json()["state"] in ("idle", "identifying")


def test_unplug_and_replug_show_on_the_tech_page_and_the_service_keeps_answering(counter: Counter) -> None:
    counter.readers(lambda s: _reader(s, "barcode")["connected"])
    old = counter.endpoints["barcode"]
    old.stop()  # the cable is pulled: the simulator's port is gone
    state = counter.readers(lambda s: not _reader(s, "barcode")["connected"])
    assert any(n["reader"] == "barcode" and "disconnected" in n["text"] for n in state["notes"])
    assert counter.http.get("/health").json()["status"] == "ok"
    rows = counter.http.get("/api/tech/diagnostics", headers=TECH).json()["devices"]
    assert "held by the service" in next(r for r in rows if r["url"] == old.url)["detail"]
    replugged = TcpEndpoint(port=old.port)  # plugged back in, same address
    replugged.start()
    counter.endpoints["barcode"] = replugged
    state = counter.readers(lambda s: _reader(s, "barcode")["connected"])
    assert _reader(state, "barcode")["reconnects"] == 1
    assert replugged.wait_client(WAIT)
    LineDeviceSimulator(replugged).scan(METFORMIN)
    assert counter.basket(lambda b: bool(b["lines"]))["lines"][0]["code"] == METFORMIN
