"""Every kiosk step at 1024×768, 1280×1024 and 1080×1920: one screen, the main action in view, axe clean
(7:1 contrast), no English on the Chinese page; a screenshot of each step at each size in tests/artifacts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.ui.conftest import TIMEOUT, Kiosk
from tests.ui.kiosk_checks import SIZES, check_step, english_sentences


@pytest.fixture(params=SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def sized(
    request: pytest.FixtureRequest, browser: Any, kiosk: Kiosk
) -> Iterator[tuple[Any, tuple[int, int]]]:
    """A kiosk page at one of the three screen sizes, the session idle, the live patient before the camera."""
    width, height = request.param
    kiosk.reset()
    kiosk.present("live")
    context = browser.new_context(
        viewport={"width": width, "height": height}, locale="zh-CN", bypass_csp=True
    )
    context.set_default_timeout(30_000)
    yield context.new_page(), (width, height)
    context.close()
    kiosk.reset()
    kiosk.present("live")


def test_each_kiosk_step_fits_and_is_accessible(
    sized: tuple[Any, tuple[int, int]], kiosk: Kiosk, monkeypatch: pytest.MonkeyPatch
) -> None:
    page, size = sized
    bills = [kiosk.new_bill(), kiosk.new_bill()]
    page.goto(f"{kiosk.url}/kiosk")
    page.wait_for_selector("#start:visible")
    check_step(page, "01-welcome", "#start", size)

    page.click("#id-open")
    page.wait_for_selector("#id-keys button[data-key='X']")
    check_step(page, "02-id-keypad", "#id-ok", size)
    page.click("#id-back")
    page.wait_for_selector("#start:visible")

    # A photo held up: the challenge runs (and never passes) long enough to look at the face step.
    kiosk.present("photo")
    page.click("#start")
    page.wait_for_function("view && view.face_checking && view.challenge_step >= 1")
    page.wait_for_selector("#cue:not(.hidden)")
    progress = page.text_content("#cue-progress") or ""
    assert progress.startswith("第 ") and "步" in progress, progress
    check_step(page, "03-face", "#camera-box", size)

    page.click("#cancel")
    page.wait_for_selector("#outcome:visible")
    check_step(page, "08-cancelled", "#start", size)

    # The live patient in a gallery above the 1:N cap: the face passes, then the last four are asked.
    kiosk.reset()
    kiosk.present("live")
    monkeypatch.setattr(kiosk.terminal.identifier, "_max_gallery", 1)
    page.click("#start")
    page.wait_for_selector("#keypad:visible")
    check_step(page, "04-second-factor", "#keypad-ok", size)
    for key in kiosk.patient.certno[-4:]:
        page.click(f"#keypad-keys button[data-key='{key.upper()}']")
    page.click("#keypad-ok")
    page.wait_for_selector(f"button[data-bill='{bills[1]}']")
    check_step(page, "05-bills", f"button[data-bill='{bills[0]}']", size)
    assert "呼吸内科" in (page.text_content(f"button[data-bill='{bills[0]}']") or "")

    page.click(f"button[data-bill='{bills[0]}']")
    page.wait_for_selector("#confirm:visible")
    check_step(page, "06-amounts", "#confirm", size)

    # Fifteen seconds before the timeout: the warning, and 继续 keeps the checkout.
    kiosk.clock.at += TIMEOUT - timedelta(seconds=10)
    page.wait_for_selector("#timeout-warning:visible")
    check_step(page, "06b-timeout-warning", "#keep-going", size)
    page.click("#keep-going")
    page.wait_for_selector("#timeout-warning", state="hidden")
    assert page.is_visible("#confirm")

    page.click("#confirm")
    page.wait_for_selector("#finish:visible")
    page.wait_for_selector("#print-status[data-print]")
    # No printer in this terminal: the receipt says nothing was printed, and why.
    assert page.get_attribute("#print-status", "data-print") == "none"
    assert "没有凭条打印机" in (page.text_content("#print-status") or "")
    assert "¥" in (page.text_content("#receipt tr[data-key='balc']") or ""), "the balance after is shown"
    check_step(page, "07-receipt", "#finish", size)
    page.click("#finish")
    page.wait_for_selector("#start:visible")


def test_the_english_sentence_check_finds_english_and_passes_codes_amounts_and_bill_numbers() -> None:
    assert english_sentences("请到人工窗口 an ID number has 18 characters") == ["an ID number has"]
    assert english_sentences("账单 DEMO-OP-0001 ¥1,234.56 SESSION_CHANGED English 中文") == []
