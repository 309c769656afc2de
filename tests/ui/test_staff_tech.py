"""The technician page at 1024×768 and 1280×1024: Chinese by default with English on a switch, the doctor
checks, readable times, no horizontal overflow, axe-core with AAA contrast."""

from __future__ import annotations

import re
from typing import Any

from tests.ui.conftest import TECH, Kiosk
from tests.ui.staff_checks import SIZES, check_screen


def every_size(page: Any, name: str) -> list[str]:
    problems = []
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        problems += check_screen(page, name, fits=False)  # a long page scrolls, never sideways
    return problems


def test_the_technician_page_in_both_languages_with_the_doctor_checks(page: Any, kiosk: Kiosk) -> None:
    problems: list[str] = []
    page.goto(f"{kiosk.url}/tech")
    page.evaluate("localStorage.removeItem('medpay-tech-lang')")
    page.reload()
    assert page.get_attribute("html", "lang") == "zh-CN" and page.text_content("h1") == "技术员"
    problems += every_size(page, "tech-01-token")
    page.fill("#token", TECH)
    page.press("#token", "Enter")
    page.wait_for_selector("#checks tbody tr", timeout=60_000)
    checks = page.locator("#checks tbody tr td:first-child").all_text_contents()
    assert "数据库" in checks and "人脸自检" in checks, checks
    assert page.text_content("#summary tr[data-key='gallery size'] th") == "人脸库人数"
    assert re.search(r"已刷新 \d{2}:\d{2}:\d{2}", page.text_content("#refreshed") or "")
    models = page.text_content("#models") or ""
    assert "mtcnn" in models and "minifasnet" not in models, "the disabled passive pack is not listed"
    for cell in page.locator(
        "#pause-attempts tbody td:first-child, #attempts tbody td:first-child"
    ).all_text_contents():
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", cell), cell
    problems += every_size(page, "tech-02-zh")
    page.click("#lang")
    page.wait_for_selector("#checks-title >> text=Self-checks")
    assert page.get_attribute("html", "lang") == "en"
    assert page.text_content("#summary tr[data-key='gallery size'] th") == "gallery size"
    problems += every_size(page, "tech-03-en")
    page.click("#lang")
    assert problems == []
