"""The counter over HTTP: shop EAN-13 scans, the cashier's price for items without a ceiling; the
technician's `medpay doctor` checks behind the technician token."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from devkit.serving import serving
from terminal.app import Terminal
from terminal.diagnostics import run_checks
from terminal.service.app import create_app
from terminal.store.bill_files import FileBillSource

CASHIER = {"Authorization": "Bearer cashier-secret"}
TECH = {"Authorization": "Bearer tech-secret"}
METFORMIN_EAN = "6900000000014"  # config/catalog/430300-national.ean13.json
METFORMIN = "XA10BAE054A001010100001"
VITAMINS = "ZC99HPD001A001010300001"  # 丙 without a price ceiling


@pytest.fixture
def http(terminal: Terminal, tmp_path: Path) -> Iterator[httpx.Client]:
    """A client of the served terminal (cashier and technician tokens set up)."""
    (tmp_path / "bills").mkdir()
    app = create_app(
        terminal,
        bills=FileBillSource(tmp_path / "bills"),
        cashier_token="cashier-secret",
        technician_token="tech-secret",
        session_timeout=timedelta(seconds=60),
        event_interval=0.1,
    )
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def test_a_shop_barcode_adds_the_mapped_catalogue_item(http: httpx.Client) -> None:
    basket = http.post("/api/counter/basket/lines", json={"code": METFORMIN_EAN}, headers=CASHIER).json()
    assert [(line["code"], line["pric"]) for line in basket["lines"]] == [(METFORMIN, "12.80")]
    unknown = http.post("/api/counter/basket/lines", json={"code": "6900000000991"}, headers=CASHIER)
    assert unknown.status_code == 422 and unknown.json()["code"] == "CATALOG_CODE_UNKNOWN"


def test_an_item_without_a_ceiling_is_sold_only_once_the_cashier_priced_it_within_the_rule(
    http: httpx.Client,
) -> None:
    basket = http.post("/api/counter/basket/lines", json={"code": VITAMINS}, headers=CASHIER).json()
    assert basket["lines"][0]["open_price"] is True and basket["lines"][0]["pric"] == "0.00"
    http.post("/api/session/start").raise_for_status()
    unpriced = [{"code": VITAMINS, "cnt": "1", "pric": "0.00"}]
    refused = http.post("/api/counter/basket", json={"items": unpriced}, headers=CASHIER)
    assert refused.status_code == 422
    assert refused.json()["code"] == "CASHIER_PRICE_INVALID" and refused.json()["message_zh"]
    too_high = [{"code": VITAMINS, "cnt": "1", "pric": "5000.01"}]  # the shipped bundles: unit_max 5000
    over = http.put("/api/counter/basket", json={"items": too_high}, headers=CASHIER)
    assert over.status_code == 422 and "unit cap 5000.00" in over.json()["detail"]
    priced = [{"code": VITAMINS, "cnt": "2", "pric": "35.50"}]
    sent = http.post("/api/counter/basket", json={"items": priced}, headers=CASHIER)
    assert sent.status_code == 200, sent.text
    assert http.get("/api/counter/basket", headers=CASHIER).json()["total"] == "71.00"


def test_the_technician_runs_the_doctor_checks_over_http(http: httpx.Client, terminal: Terminal) -> None:
    assert http.get("/api/tech/checks").status_code == 401
    assert http.get("/api/tech/checks", headers=CASHIER).status_code == 401
    answer = http.get("/api/tech/checks", headers=TECH).json()
    with terminal.lock:
        expected = [check.name for check in run_checks(terminal)]
    assert [check["name"] for check in answer["checks"]] == expected
    assert {"name", "ok", "detail", "fix"} == set(answer["checks"][0])
    assert answer["ok"] == all(check["ok"] for check in answer["checks"])
