"""The counter page withdraws a patient's face consent by ID number (cashier token, confirmed first)."""

from __future__ import annotations

from typing import Any

from terminal.app import embedder_model_id
from terminal.demo_data import DEMO_PEOPLE, seed_demo
from tests.ui.conftest import CASHIER, Kiosk


def test_counter_withdraws_face_consent_by_id_number(page: Any, kiosk: Kiosk) -> None:
    # The last demo person the other browser tests do not use as their patient.
    person = next(p for p in reversed(DEMO_PEOPLE) if p.psn_no != kiosk.patient.psn_no)
    try:
        _withdraw_at_the_counter(page, kiosk, person)
    finally:
        # The service is shared by the browser tests: the next one finds the demo gallery whole again.
        with kiosk.terminal.lock:
            seed_demo(kiosk.terminal)


def _withdraw_at_the_counter(page: Any, kiosk: Kiosk, person: Any) -> None:
    page.goto(f"{kiosk.url}/counter")
    page.fill("#token", CASHIER)
    page.press("#token", "Enter")
    page.on("dialog", lambda dialog: dialog.accept())  # "确认撤回该患者的刷脸授权？"
    page.click("#consent-panel summary")  # folded away on the basket screen
    page.fill("#consent-certno", "430302190001010008")  # nobody here holds it
    page.press("#consent-certno", "Enter")
    page.wait_for_selector("#alert:visible")
    page.fill("#consent-certno", person.certno)
    page.press("#consent-certno", "Enter")
    page.wait_for_selector("#consent-result >> text=已撤回")
    assert "删除 1 个人脸特征" in (page.text_content("#consent-result") or "")
    assert page.input_value("#consent-certno") == "", "the ID number does not stay on the screen"
    with kiosk.terminal.lock:
        owners, _ = kiosk.terminal.gallery.all_templates(embedder_model_id(kiosk.terminal.config))
    assert person.psn_no not in owners
