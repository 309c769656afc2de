"""The technician page shows the terminal-wide face pause and lifts it."""

from __future__ import annotations

from typing import Any

import httpx

from terminal.id_numbers import with_check_digit
from tests.ui.conftest import TECH, Kiosk, shot


def test_the_technician_sees_the_pause_and_lifts_it(page: Any, kiosk: Kiosk) -> None:
    with httpx.Client(base_url=kiosk.url, timeout=30) as http:
        for checkout in range(2):  # five ID numbers nobody verifies per checkout: ten fill the window
            http.post("/api/session/cancel")
            http.post("/api/session/start")
            for n in range(5):
                number = with_check_digit(f"11010119900{checkout + 5}01{n:02d}0")
                typed = {"method": "id", "value": number}
                http.post("/api/session/credential", json=typed).raise_for_status()
        http.post("/api/session/cancel")
    page.goto(f"{kiosk.url}/tech")
    page.fill("#token", TECH)
    page.press("#token", "Enter")
    page.wait_for_selector("#pause tbody tr >> text=暂停至")  # "paused until", the page in Chinese
    assert page.locator("#pause-attempts tbody tr").count() >= 10
    shot(page, "tech-02-face-paused")
    page.click("#pause-reset")
    page.wait_for_selector("#pause tbody tr >> text=可用")  # "available"
    with httpx.Client(base_url=kiosk.url, timeout=30) as http:
        assert http.get("/api/session").json()["face_paused_until"] is None
