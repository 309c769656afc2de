"""The kiosk's camera path: the terminal holds the camera, the page shows its preview and sends taps only."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.ui.conftest import Kiosk, frames_sent, shot

# The preview <img> has decoded a frame of the service's stream.
PREVIEW_SHOWN = "document.getElementById('camera').naturalWidth > 0"
# Records whether the page ever asks the browser for a camera (it must not: the terminal holds it).
NO_BROWSER_CAMERA_JS = """
window.__cameraAsked = false;
if (navigator.mediaDevices) {
  navigator.mediaDevices.getUserMedia = async () => {
    window.__cameraAsked = true;
    throw new DOMException("refused by the test", "NotAllowedError");
  };
}
"""


def test_face_checkout_through_the_terminals_camera(live_camera: Any, kiosk: Kiosk) -> None:
    page = live_camera
    bill = kiosk.new_bill()
    page.goto(f"{kiosk.url}/kiosk")
    page.click("#start")
    page.wait_for_function(PREVIEW_SHOWN)
    assert "/api/session/camera" in (page.get_attribute("#camera", "src") or ""), "the service's stream"
    assert not page.is_visible("#no-camera"), "with a camera the face path is offered"
    shot(page, "kiosk-09-camera")
    # One face in view: the attempt starts by itself.
    page.click(f"button[data-bill='{bill}']")
    page.wait_for_selector("#confirm:visible")
    assert not page.is_visible("#camera"), "the preview stops once the patient is identified"
    assert page.get_attribute("#camera", "src") is None, "and its stream is closed"
    page.click("#confirm")
    page.wait_for_selector("#finish:visible")
    assert kiosk.terminal.ledger.is_settled(bill)


def test_the_page_sends_taps_never_camera_frames(live_camera: Any, kiosk: Kiosk) -> None:
    page = live_camera
    page.add_init_script(NO_BROWSER_CAMERA_JS)
    requests: list[Any] = []
    page.on("request", lambda request: requests.append(request))
    bill = kiosk.new_bill()
    page.goto(f"{kiosk.url}/kiosk")
    page.click("#start")
    page.wait_for_function(PREVIEW_SHOWN)
    page.click(f"button[data-bill='{bill}']")
    page.click("#confirm")
    page.wait_for_selector("#finish:visible")
    posts = [r for r in requests if r.method != "GET"]
    assert {r.url.removeprefix(kiosk.url) for r in posts} == {
        "/api/session/start",
        "/api/session/face/start",
        "/api/session/bill",
        "/api/session/confirm",
    }
    assert frames_sent(requests) == [], "no request carries a picture"
    assert not page.evaluate(
        "typeof navigator.mediaDevices !== 'undefined' && window.__camera_opened === true"
    )
    assert page.evaluate("document.querySelectorAll('video, canvas').length") == 0


def test_without_a_camera_preview_the_kiosk_offers_the_other_ways(page: Any, kiosk: Kiosk) -> None:
    # The stream refused as the service does when its camera is unplugged: the page says so.
    page.route("**/api/session/camera*", lambda route: route.fulfill(status=503, body="no camera"))
    page.goto(f"{kiosk.url}/kiosk")
    page.click("#start")
    page.wait_for_selector("#no-camera:visible")
    assert not page.is_visible("#snap")
    assert page.is_visible("#alternatives") and page.is_visible("#alt-qr") and page.is_visible("#alt-card")


def test_a_tap_before_the_page_has_seen_the_session_still_starts_it(page: Any, kiosk: Kiosk) -> None:
    # The page's first look at the session held back: the patient taps 刷脸 before it comes back.
    held: list[Any] = []
    page.route(re.compile(r".*/api/session$"), lambda route: held.append(route))
    page.goto(f"{kiosk.url}/kiosk")
    page.wait_for_function("document.readyState === 'complete'")
    assert held, "the page asked for the session"
    page.click("#start")
    # taking the route away lets the held requests through (Playwright continues them)
    page.unroute(re.compile(r".*/api/session$"))
    page.wait_for_selector("#face-panel:visible")
    assert httpx.get(f"{kiosk.url}/api/session", timeout=30).json()["state"] == "identifying"
