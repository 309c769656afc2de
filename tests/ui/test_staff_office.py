"""The counter office page at 1024×768 and 1280×1024: sign-in, the day's settlements, reprint, the refund
form and the day report, in Chinese, one screen, axe-core with AAA contrast."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from terminal.store.staff import StaffStore
from tests.ui.conftest import CASHIER, Kiosk, bearer
from tests.ui.staff_checks import SIZES, check_screen

PASSWORD = "counter-ui-password-1"
METFORMIN = "XA10BAE054A001010100001"


@pytest.fixture(scope="module")
def staff(kiosk: Kiosk) -> str:
    """A cashier and a supervisor who sign in at the office; the cashier's staff ID."""
    with kiosk.terminal.lock:
        store = StaffStore(kiosk.terminal.db)
        if not [m for m in store.all() if m.staff_id == "ui-cashier"]:
            now = kiosk.terminal.clock.now()
            store.add("ui-cashier", "王收银", "cashier", PASSWORD, now, "technician:test")
            store.add("ui-super", "赵主管", "supervisor", PASSWORD, now, "technician:test")
    return "ui-cashier"


def settle_at_the_counter(kiosk: Kiosk) -> None:
    """One counter sale settled over HTTP (the basket, the ID number, the patient's face, confirm)."""
    with httpx.Client(base_url=kiosk.url, timeout=30) as http:
        http.post("/api/session/start").raise_for_status()
        items = [{"code": METFORMIN, "cnt": "1", "pric": "12.80"}]
        http.post("/api/counter/basket", json={"items": items}, headers=bearer(CASHIER)).raise_for_status()
        http.post("/api/session/credential", json={"method": "id", "value": kiosk.patient.certno})
        http.post("/api/session/face/start").raise_for_status()
        deadline = time.monotonic() + 60
        view = http.get("/api/session").json()
        while view["state"] != "priced" and time.monotonic() < deadline:
            view = http.get("/api/session").json()
        assert view["state"] == "priced", view
        shown = {k: view[k] for k in ("session_id", "amounts_digest")} | {
            "chrg_bchno": view["bill"]["chrg_bchno"]
        }
        assert http.post("/api/session/confirm", json=shown).json()["state"] in ("settled", "paying")
        http.post("/api/session/finish")
        http.delete("/api/counter/basket", headers=bearer(CASHIER))


def every_size(page: Any, name: str) -> list[str]:
    problems = []
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        problems += check_screen(page, name, fits=True)
    return problems


def test_the_office_page_in_chinese_fits_and_passes_axe(page: Any, kiosk: Kiosk, staff: str) -> None:
    settle_at_the_counter(kiosk)
    problems: list[str] = []
    page.goto(f"{kiosk.url}/office")
    page.wait_for_selector("#who >> text=请先登录")
    problems += every_size(page, "office-01-sign-in")
    page.fill("#staff-id", staff)
    page.fill("#password", "wrong-password-0")
    page.press("#password", "Enter")
    page.wait_for_selector("#alert:visible")
    assert "登录" in (page.text_content("#alert p") or "") or "密码" in (page.text_content("#alert p") or "")
    page.fill("#password", PASSWORD)
    page.press("#password", "Enter")
    page.wait_for_selector("#who >> text=王收银（收银员）已登录")
    page.wait_for_selector("#settlements tbody tr")
    listing = page.text_content("#settlements") or ""
    assert "柜台另收现金" in listing and "external" not in listing  # no gateway in these tests
    assert re.fullmatch(r"\d{2}:\d{2}", page.text_content("#settlements tbody tr td:nth-child(2)") or "")
    problems += every_size(page, "office-02-day")
    page.click("#settlements tbody tr:first-child button >> text=补打")
    page.wait_for_selector("#out:not(:empty)")
    assert "补打" in (page.text_content("#out") or "")
    problems += every_size(page, "office-03-reprint")
    page.click("#settlements tbody tr:first-child button >> text=退费")
    page.wait_for_selector("#refund-panel:visible")
    problems += every_size(page, "office-04-refund-form")
    page.click("#refund-close")
    page.click("#report")
    page.wait_for_selector("#report-table:visible")
    assert "对账" in (page.text_content("#out") or "")
    report = page.text_content("#report-table") or ""
    assert "医疗费总额" in report and "medfee_sumamt" not in report and "match" not in report
    problems += every_size(page, "office-05-day-report")
    assert problems == []
