"""The counter office page at 1024×768 and 1280×1024: sign-in, the day's settlements, reprint, the refund
form and the day report, in Chinese, one screen, axe-core with AAA contrast."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.ui.conftest import Kiosk
from tests.ui.counter_kit import PASSWORD, add_staff, settle_at_the_counter
from tests.ui.staff_checks import SIZES, check_screen


@pytest.fixture(scope="module")
def staff(kiosk: Kiosk) -> str:
    """A cashier and a supervisor who sign in at the office; the cashier's staff ID."""
    return add_staff(kiosk)


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
