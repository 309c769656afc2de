"""The counter page as a cashier uses it at 1024×768 and 1280×1024: one screen per step, Chinese labels,
shop barcodes, the cashier's price for items without a ceiling, and axe-core with AAA contrast."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.ui.conftest import CASHIER, Kiosk
from tests.ui.staff_checks import SIZES, check_screen

METFORMIN_EAN = (
    "6900000000014"  # the shop's barcode of 盐酸二甲双胍片 (config/catalog/430300-national.ean13.json)
)
VITAMINS = "ZC99HPD001A001010300001"  # 复合维生素片: 丙, no price ceiling
RAW_FIELDS = ("msgid", "setl_time", "psn_cash_pay", "offline", "false", "[object Object]", "T0", "+08:00")


def every_size(page: Any, name: str, *, in_view: str | None = None) -> list[str]:
    """The checks of this step at each size (the page keeps its state while the window changes)."""
    problems = []
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        problems += check_screen(page, name, fits=True, in_view=in_view)
    return problems


def test_a_cashier_sells_a_shop_barcode_and_an_unpriced_item_in_one_screen_per_step(
    page: Any, kiosk: Kiosk
) -> None:
    problems: list[str] = []
    page.goto(f"{kiosk.url}/counter")
    page.wait_for_selector("#status:not(:empty)")
    assert page.get_attribute("a[href='/office']", "href") == "/office"
    problems += every_size(page, "counter-01-sign-in")
    page.fill("#token", CASHIER)
    page.press("#token", "Enter")
    page.fill("#scan", METFORMIN_EAN)  # a keyboard-wedge scanner types the EAN-13 and Enter
    page.press("#scan", "Enter")
    page.wait_for_selector("#basket tbody tr >> text=二甲双胍")
    page.fill("#scan", VITAMINS)
    page.press("#scan", "Enter")
    page.wait_for_selector("#price-1")
    assert page.is_disabled("#to-patient"), "an unpriced item cannot be sent to the patient"
    assert "待定价" in (page.text_content("#total") or "")
    page.fill("#price-1", "9000")  # above the bundle's unit cap: refused, in Chinese
    page.press("#price-1", "Enter")
    page.wait_for_selector("#alert:visible")
    assert "需要收银员按规定定价" in (page.text_content("#alert p") or "")
    page.fill("#price-1", "35.5")
    page.press("#price-1", "Enter")
    page.wait_for_selector("#total >> text=¥48.30")
    # The long name stays on one line, cut by an ellipsis; its full text is on hover (title).
    name = page.locator("#basket tbody tr:nth-child(1) .one-line")
    assert name.get_attribute("title") == name.text_content()
    assert page.evaluate("getComputedStyle(document.querySelector('.one-line')).whiteSpace") == "nowrap"
    problems += every_size(page, "counter-02-basket", in_view="#to-patient")
    page.click("#to-patient")
    page.wait_for_selector("#identify-panel:visible")
    assert page.is_hidden("#basket-panel") and page.is_hidden("#to-patient")
    problems += every_size(page, "counter-03-identify", in_view="#form-cred button")
    page.fill("#cred-value", kiosk.patient.certno)
    page.press("#cred-value", "Enter")
    # The typed ID number names whom to verify; the patient then looks at the terminal's camera.
    httpx.post(f"{kiosk.url}/api/session/face/start", timeout=30).raise_for_status()
    page.wait_for_selector("#confirm:visible", timeout=60_000)
    assert page.locator("button.primary:visible").count() == 1, "one confirm button on the screen"
    assert page.evaluate("document.activeElement.id") == "confirm"
    assert "¥" in (page.text_content("#layers") or "")
    problems += every_size(page, "counter-04-priced", in_view="#confirm")
    page.click("#confirm")
    page.wait_for_selector("#finish:visible")
    receipt = page.text_content("#receipt") or ""
    assert "流水号" in receipt and "结算时间" in receipt and "现金支付" in receipt
    assert not [raw for raw in RAW_FIELDS if raw in receipt], receipt
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", receipt)
    problems += every_size(page, "counter-05-receipt", in_view="#finish")
    page.click("#finish")
    page.wait_for_selector("#basket-panel:visible")
    assert page.locator("#basket tbody tr").count() == 0
    assert problems == []


def test_the_basket_is_read_only_once_sent_to_the_patient(page: Any, kiosk: Kiosk) -> None:
    page.goto(f"{kiosk.url}/counter")
    page.fill("#token", CASHIER)
    page.press("#token", "Enter")
    page.fill("#scan", METFORMIN_EAN)
    page.press("#scan", "Enter")
    page.wait_for_selector("#qty-0")
    assert page.is_enabled("#qty-0")
    page.click("#to-patient")
    page.wait_for_selector("#identify-panel:visible")
    # Back on the basket step (cancelled): the same basket was sent, so its lines no longer change here.
    assert page.is_disabled("#qty-0") and page.is_disabled("#basket tbody button")
    page.click("#cancel")
    page.wait_for_selector("#basket-panel:visible")
