"""Confirm is bound to what the patient saw: the page sends the session, bill and amounts it displayed."""

from __future__ import annotations

import json
from typing import Any

import httpx

from terminal.errors import SessionChangedError
from tests.ui.conftest import Kiosk, shot


def _priced(page: Any, kiosk: Kiosk) -> str:
    """Face checkout up to the priced screen of a fresh bill; its number."""
    bill = kiosk.new_bill()
    page.goto(f"{kiosk.url}/kiosk")
    page.click("#start")  # the face in view starts the attempt by itself
    page.click(f"button[data-bill='{bill}']")
    page.wait_for_selector("#confirm:visible")
    return bill


def test_confirm_sends_the_session_bill_and_digest_it_showed(live_camera: Any, kiosk: Kiosk) -> None:
    page = live_camera
    bill = _priced(page, kiosk)
    shown = httpx.get(f"{kiosk.url}/api/session", timeout=30).json()
    assert shown["amounts_digest"] and shown["bill"]["chrg_bchno"] == bill
    with page.expect_request("**/api/session/confirm") as confirm:
        page.click("#confirm")
    sent = json.loads(confirm.value.post_data or "{}")
    assert sent == {
        "session_id": shown["session_id"],
        "chrg_bchno": bill,
        "amounts_digest": shown["amounts_digest"],
    }
    page.wait_for_selector("#finish:visible")
    assert kiosk.terminal.ledger.is_settled(bill)


def test_changed_amounts_are_refused_and_the_new_pricing_is_shown(live_camera: Any, kiosk: Kiosk) -> None:
    page = live_camera
    bill = _priced(page, kiosk)

    def stale(route: Any) -> None:
        # As if the page had displayed older amounts than the session now holds.
        body = json.loads(route.request.post_data or "{}")
        route.continue_(post_data=json.dumps({**body, "amounts_digest": "0" * len(body["amounts_digest"])}))

    page.route("**/api/session/confirm", stale)
    with page.expect_response("**/api/session/confirm") as answer:
        page.click("#confirm")
    assert answer.value.status == 409
    page.wait_for_selector("#alert:visible")
    assert (page.text_content("#alert") or "").startswith(SessionChangedError.message_zh)
    assert page.is_visible("#confirm"), "the priced view is shown again"
    assert page.text_content("#bill-no") == bill
    shot(page, "kiosk-11-amounts-changed")
    assert not kiosk.terminal.ledger.is_settled(bill)
    page.unroute("**/api/session/confirm")
    page.click("#confirm")
    page.wait_for_selector("#finish:visible")
    assert kiosk.terminal.ledger.is_settled(bill)
