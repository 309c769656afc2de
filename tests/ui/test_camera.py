"""The kiosk's camera path: the page's camera shows a presenter that follows the movement prompts."""

from __future__ import annotations

from typing import Any

from tests.ui.conftest import Kiosk, shot


def test_face_checkout_through_the_camera(live_camera: Any, kiosk: Kiosk) -> None:
    page = live_camera
    bill = kiosk.new_bill()
    page.goto(f"{kiosk.url}/kiosk")
    page.click("#start")
    page.wait_for_selector("#snap:visible")
    page.wait_for_function("document.getElementById('camera').videoWidth > 0")
    assert not page.is_visible("#no-camera"), "with a camera the face path is offered"
    page.wait_for_function("document.getElementById('overlay').dataset.faces === '1'")
    assert "开始刷脸" in (page.text_content("#camera-prompt") or "")
    shot(page, "kiosk-09-camera")
    page.click("#snap")
    page.click(f"button[data-bill='{bill}']")
    page.wait_for_selector("#confirm:visible")
    assert not page.is_visible("#camera"), "the camera stops once the patient is identified"
    page.click("#confirm")
    page.wait_for_selector("#finish:visible")
    assert kiosk.terminal.ledger.is_settled(bill)


def test_without_a_camera_the_kiosk_offers_the_other_ways(page: Any, kiosk: Kiosk) -> None:
    page.goto(f"{kiosk.url}/kiosk")
    page.click("#start")
    page.wait_for_selector("#no-camera:visible")
    assert not page.is_visible("#snap")
    assert page.is_visible("#alternatives")
