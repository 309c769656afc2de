"""The counter's cash share through the reference gateway in the browser: a scanned 付款码 paid, then
the whole settlement refunded at the office with a supervisor's approval.

Its own served terminal (the shared `kiosk` has no `[payment]`: its settlements are collected outside,
which the other staff tests rely on), built the same way, with `[payment]` pointing at the reference
gateway (a subprocess, as in test_kiosk_pay.py). The patient is identified as at the counter: the ID
number typed, then the face at the terminal's synthetic camera.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest

from terminal.config import DEFAULT_CONFIG, load
from terminal.payment_types import fen_of, out_trade_no_for
from terminal.pipeline.refunds import counter_refund_no
from terminal.store.payments import PaymentStore
from tests.integration.payment_kit import MERCHANT, PaymentKit, running_gateway
from tests.ui.conftest import CASHIER, Kiosk, require_browser_and_models, served_kiosk, shot
from tests.ui.counter_kit import PASSWORD, SUPERVISOR_ID, add_staff, settle_at_the_counter

METFORMIN_EAN = "6900000000014"  # the shop's barcode of 盐酸二甲双胍片 (as in test_staff_counter.py)
VITAMINS = "ZC99HPD001A001010300001"  # 复合维生素片: 丙, priced by the cashier, all paid by the patient
# Above 张伟's personal account (¥326.40), so each sale leaves a cash share whatever was sold before.
VITAMINS_PRICE = "400.00"
# WeChat-shaped payment codes (18 digits starting 13: docs/payment.md §5), one per checkout.
COUNTER_CODE, OFFICE_CODE = "134567890123456789", "134567890123456790"
SAME_PERSON = "退费需另一位主管登录确认（不能由同一人操作）。"


@dataclass
class PayCounter:
    """A served terminal whose cash share goes through the reference gateway, and that gateway."""

    kiosk: Kiosk
    kit: PaymentKit
    cashier_id: str


@pytest.fixture(scope="module")
def pay_counter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PayCounter]:
    require_browser_and_models()
    root = tmp_path_factory.mktemp("ui-pay")
    folder = root / "gateway"
    folder.mkdir()
    with running_gateway(folder) as kit:
        config = load(DEFAULT_CONFIG)
        payment = config.payment.model_copy(
            update={"url": kit.url, "merchant_id": MERCHANT, "key_file": kit.key_file}
        )
        with served_kiosk(root, config.model_copy(update={"payment": payment})) as kiosk:
            yield PayCounter(kiosk, kit, add_staff(kiosk))


@pytest.fixture
def pay_page(browser: Any, pay_counter: PayCounter) -> Iterator[Any]:
    """A fresh staff page at 1280×1024, the session idle and every gateway fault off."""
    pay_counter.kiosk.reset()
    pay_counter.kit.reset()
    context = browser.new_context(viewport={"width": 1280, "height": 1024}, locale="zh-CN", bypass_csp=True)
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()
    pay_counter.kit.reset()
    pay_counter.kiosk.reset()


def row_text(page: Any, key: str) -> str:
    """The value of one receipt row (by its field) as the counter shows it."""
    return page.text_content(f"#receipt tr[data-key='{key}'] td") or ""


def test_a_scanned_wechat_code_pays_the_cash_due_and_shows_paid_only_after_the_gateway_answered(
    pay_page: Any, pay_counter: PayCounter
) -> None:
    page, kiosk, kit = pay_page, pay_counter.kiosk, pay_counter.kit
    page.goto(f"{kiosk.url}/counter")
    page.wait_for_selector("#status:not(:empty)")
    page.fill("#token", CASHIER)
    page.press("#token", "Enter")
    page.fill("#scan", METFORMIN_EAN)
    page.press("#scan", "Enter")
    page.wait_for_selector("#basket tbody tr >> text=二甲双胍")
    page.fill("#scan", VITAMINS)
    page.press("#scan", "Enter")
    page.fill("#price-1", VITAMINS_PRICE)
    page.press("#price-1", "Enter")
    page.wait_for_selector("#to-patient:enabled")
    page.click("#to-patient")
    page.wait_for_selector("#identify-panel:visible")
    page.fill("#cred-value", kiosk.patient.certno)
    page.press("#cred-value", "Enter")
    httpx.post(f"{kiosk.url}/api/session/face/start", timeout=30).raise_for_status()
    page.wait_for_selector("#confirm:visible", timeout=60_000)
    cash = Decimal(page.evaluate("view.bill.totals.psn_cash_pay"))
    assert cash > 0, "the sample sale leaves a cash share to collect"
    page.click("#confirm")
    page.wait_for_selector("#pay-panel:visible")
    # counter_pay.js fills the paying step from its own follow of the session (every poll_s).
    page.wait_for_selector("#pay-due:not(:empty)")
    assert page.text_content("#pay-due") == f"¥{cash}"
    assert page.text_content("#pay-state") == "未支付"
    assert page.evaluate("document.activeElement.id") == "paycode"
    # The gateway holds the charge until released: until it answers the page must not say paid.
    kit.faults(hold=True)
    page.fill("#paycode", COUNTER_CODE)  # a keyboard-wedge scanner types the code and Enter
    page.press("#paycode", "Enter")
    kit.wait_held(1)
    assert not [o for o in kit.orders().values() if o["state"] == "SUCCESS"]
    assert page.is_visible("#pay-panel") and page.is_hidden("#receipt-panel")
    assert "支付成功" not in (page.text_content("body") or "")
    assert kit.release() == 1
    page.wait_for_selector("#finish:visible")
    assert page.is_hidden("#pay-panel")
    assert row_text(page, "complete") == "支付成功"
    msgid = row_text(page, "msgid")
    shot(page, "counter-pay-01-paid")
    paid = [o for o in kit.orders().values() if o["state"] == "SUCCESS"]
    assert len(paid) == 1, paid
    order = paid[0]
    assert order["out_trade_no"] == out_trade_no_for(msgid)
    assert order["total_fen"] == fen_of(cash) and order["channel"] == "wechat"
    assert row_text(page, "payment") == f"¥{cash}（微信支付）"
    assert row_text(page, "transaction_id") == order["transaction_id"]
    page.click("#finish")
    page.wait_for_selector("#basket-panel:visible")


def test_an_office_refund_needs_another_persons_approval_and_refunds_the_paid_order(
    pay_page: Any, pay_counter: PayCounter
) -> None:
    page, kiosk, kit = pay_page, pay_counter.kiosk, pay_counter.kit
    items = [{"code": VITAMINS, "cnt": "1", "pric": VITAMINS_PRICE}]
    receipt = settle_at_the_counter(kiosk, pay_code=OFFICE_CODE, items=items)["receipt"]
    msgid, fen = receipt["msgid"], fen_of(Decimal(receipt["payment"]["cash_due"]))
    order_no = out_trade_no_for(msgid)
    assert kit.orders()[order_no]["state"] == "SUCCESS" and fen > 0
    page.goto(f"{kiosk.url}/office")
    page.wait_for_selector("#who >> text=请先登录")
    page.fill("#staff-id", pay_counter.cashier_id)
    page.fill("#password", PASSWORD)
    page.press("#password", "Enter")
    page.wait_for_selector("#who >> text=王收银（收银员）已登录")
    row = page.locator(f"#settlements tbody tr[data-msgid='{msgid}']")
    assert row.locator("td:nth-child(5)").text_content() == "已支付（微信支付）"
    row.locator("button >> text=退费").click()
    page.wait_for_selector("#refund-panel:visible")
    assert page.text_content("#refund-msgid") == msgid
    page.fill("#reason", "患者退药")
    # The cashier cannot approve their own refund.
    page.fill("#sup-id", pay_counter.cashier_id)
    page.fill("#sup-password", PASSWORD)
    page.press("#sup-password", "Enter")
    page.wait_for_selector("#alert:visible")
    assert page.text_content("#alert p") == SAME_PERSON
    assert kit.orders()[order_no]["state"] == "SUCCESS", "nothing refunded on a refused approval"
    page.fill("#sup-id", SUPERVISOR_ID)
    page.fill("#sup-password", PASSWORD)
    page.press("#sup-password", "Enter")
    page.wait_for_selector(f"#out >> text=已退费：{msgid}")
    assert page.is_hidden("#refund-panel") and page.is_hidden("#alert")
    page.wait_for_selector(f"#settlements tbody tr[data-msgid='{msgid}'] >> text=已退费（已退）")
    assert row.locator("button >> text=退费").count() == 0, "a refunded settlement offers no refund"
    shot(page, "office-refund-01-refunded")
    # The gateway's own record: the order refunded in full, under the counter refund's own number.
    order = kit.orders()[order_no]
    assert order["state"] == "REFUND" and order["refunded_fen"] == fen, order
    refunds = [(r["out_refund_no"], r["refund_fen"], r["state"]) for r in order["refunds"]]
    assert refunds == [(counter_refund_no(order_no), fen, "SUCCESS")]
    with kiosk.terminal.lock:
        payment = PaymentStore(kiosk.terminal.db).get(msgid)
    assert payment is not None and payment.state == "refunded", payment
