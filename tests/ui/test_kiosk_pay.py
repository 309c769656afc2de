"""Kiosk QR pay in the browser: the cash due as the headline, the QR with a countdown, 未支付 → 已支付.

Its own service over a terminal whose `[payment]` points at the reference gateway (a subprocess); the
patient is identified the way the terminal's card reader does it, so no camera or model is needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devkit.serving import serving
from terminal.app import Terminal, build_terminal
from terminal.config import DEFAULT_CONFIG, load
from terminal.demo_data import DEMO_PEOPLE, SAMPLE_BILL
from terminal.domain import CertType, IdentityClaim
from terminal.service.app import create_app
from terminal.store.bill_files import FileBillSource
from terminal.store.keys import create_key
from tests.fakes import FixedClock
from tests.integration.payment_kit import MERCHANT, PaymentKit, running_gateway
from tests.ui.conftest import shot
from tests.ui.kiosk_checks import SIZES, check_step

PATIENT = DEMO_PEOPLE[2]  # 张伟: the sample bill leaves him a cash share


@dataclass
class PayKiosk:
    url: str
    terminal: Terminal
    kit: PaymentKit
    app: Any

    def card_identifies(self) -> None:
        """What the card reader does once a card is proven: the session identifies its holder."""
        claim = IdentityClaim(CertType.SOCIAL_SECURITY_CARD, "read-by-reader", psn_no=PATIENT.psn_no)
        self.app.state.service.checkout.identify_credential(claim)


@pytest.fixture
def pay_kiosk(tmp_path: Path) -> Iterator[PayKiosk]:
    folder = tmp_path / "gateway"
    folder.mkdir()
    with running_gateway(folder) as kit:
        config = load(DEFAULT_CONFIG)
        payment = config.payment.model_copy(
            update={"url": kit.url, "merchant_id": MERCHANT, "key_file": kit.key_file}
        )
        camera = config.camera.model_copy(update={"url": None})
        config = config.model_copy(update={"payment": payment, "camera": camera})
        data = tmp_path / "data"
        create_key(data)
        terminal = build_terminal(config, data, FixedClock())
        for person in DEMO_PEOPLE:
            terminal.gallery.upsert_person(person)
        bills = tmp_path / "bills"
        bills.mkdir()
        (bills / "op.json").write_text(SAMPLE_BILL.read_text(encoding="utf-8"), encoding="utf-8")
        app = create_app(terminal, bills=FileBillSource(bills), event_interval=0.2)
        with serving(app) as url:
            yield PayKiosk(url, terminal, kit, app)
        terminal.close()


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_kiosk_qr_pay_shows_the_cash_due_the_qr_and_paid_only_after_the_phone_paid(
    browser: Any, pay_kiosk: PayKiosk, size: tuple[int, int]
) -> None:
    # Under the page's own CSP except for the checks' script (axe-core is injected by evaluate).
    viewport = {"width": size[0], "height": size[1]}
    context = browser.new_context(viewport=viewport, locale="zh-CN", bypass_csp=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        page.goto(f"{pay_kiosk.url}/kiosk")
        page.click("#tile-card")
        page.wait_for_selector("#screen-identifying:visible")
        pay_kiosk.card_identifies()
        page.click("button[data-bill='DEMO-OP-0001']")
        page.wait_for_selector("#confirm:visible")
        cash = page.evaluate("view.bill.totals.psn_cash_pay")
        page.click("#confirm")
        page.wait_for_selector("#screen-paying:visible")
        assert page.text_content("#pay-due") == f"¥{cash}" and cash != "0.00"  # under ¥1,000 here
        page.click("#pay-qr")
        page.wait_for_selector("#pay-qr-img:visible")
        page.wait_for_function("document.getElementById('pay-qr-img').naturalWidth > 0")  # the SVG drew
        assert "秒后失效" in (page.text_content("#pay-countdown") or "")
        assert page.text_content("#pay-state") == "未支付"
        shot(page, "kiosk-pay-01-qr")
        check_step(page, "09-paying-qr", "#pay-qr-img", size)
        order = page.text_content("#pay-order") or ""
        assert pay_kiosk.kit.orders()[order]["state"] == "NOTPAY"
        code_url = page.evaluate("view.payment.code_url")
        assert pay_kiosk.kit.pay_qr(code_url).status_code == 200
        # The page's own polling finds it paid: the receipt, with 支付成功, the wallet and the number.
        page.wait_for_selector("#finish:visible")
        receipt = page.text_content("#receipt") or ""
        transaction = pay_kiosk.kit.orders()[order]["transaction_id"]
        assert "支付成功" in receipt and "微信支付" in receipt and transaction in receipt
        assert page.text_content("#prompt") == "支付成功，请查看凭条。"
        shot(page, "kiosk-pay-02-paid")
        check_step(page, "10-paid-receipt", "#finish", size)
        assert pay_kiosk.terminal.ledger.is_settled("DEMO-OP-0001")
    finally:
        context.close()


def test_kiosk_cancel_while_the_qr_is_shown_says_nothing_was_charged(
    browser: Any, pay_kiosk: PayKiosk
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        page.goto(f"{pay_kiosk.url}/kiosk")
        page.click("#tile-card")
        page.wait_for_selector("#screen-identifying:visible")
        pay_kiosk.card_identifies()
        page.click("button[data-bill='DEMO-OP-0001']")
        page.click("#confirm")
        page.click("#pay-qr")
        page.wait_for_selector("#pay-qr-img:visible")
        order = page.text_content("#pay-order") or ""
        page.click("#cancel")
        page.wait_for_selector("#screen-idle:visible")
        assert "没有扣费" in (page.text_content("#outcome") or "")
        assert pay_kiosk.kit.orders()[order]["state"] == "CLOSED"
        assert not pay_kiosk.terminal.ledger.is_settled("DEMO-OP-0001")
    finally:
        context.close()
