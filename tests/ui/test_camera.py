"""The kiosk's camera path: Chromium's fake capture device replays a recorded frame as the camera."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from terminal.vision.images import load_image
from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS, Kiosk, shot

WIDTH, HEIGHT = 640, 480


def write_y4m(image_path: Path, out: Path, frames: int = 10) -> Path:
    """A Y4M clip of one still image, centred on a grey 640×480 canvas (what the fake camera plays)."""
    image = load_image(image_path)
    canvas = np.full((HEIGHT, WIDTH, 3), 128, dtype=np.uint8)
    h, w = min(image.shape[0], HEIGHT), min(image.shape[1], WIDTH)
    top, left = (HEIGHT - h) // 2, (WIDTH - w) // 2
    canvas[top : top + h, left : left + w] = image[:h, :w]
    i420 = cv2.cvtColor(canvas, cv2.COLOR_BGR2YUV_I420).tobytes()
    with out.open("wb") as handle:
        handle.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            handle.write(b"FRAME\n" + i420)
    return out


@pytest.fixture
def camera_page(kiosk: Kiosk, tmp_path: Path) -> Iterator[Any]:
    """A page in a Chromium whose camera replays the enrolled person's probe."""
    from playwright.sync_api import sync_playwright

    clip = write_y4m(kiosk.probes / "zhang-wei.png", tmp_path / "camera.y4m")
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={clip}",
    ]
    kiosk.reset()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=args)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.grant_permissions(["camera"], origin=kiosk.url)
        context.set_default_timeout(20_000)
        yield context.new_page()
        context.close()
        browser.close()
    kiosk.reset()


def test_face_checkout_through_the_camera(camera_page: Any, kiosk: Kiosk) -> None:
    page = camera_page
    bill = kiosk.new_bill()
    page.goto(f"{kiosk.url}/kiosk")
    page.click("#start")
    page.wait_for_selector("#snap:visible")
    page.wait_for_function("document.getElementById('camera').videoWidth > 0")
    assert not page.is_visible("#face-upload"), "one way in: the camera replaces the upload"
    page.wait_for_function("document.getElementById('overlay').dataset.faces === '1'")
    assert "保持不动" in (page.text_content("#camera-prompt") or "")
    shot(page, "kiosk-09-camera")
    page.click("#snap")
    page.click(f"button[data-bill='{bill}']")
    page.wait_for_selector("#confirm:visible")
    assert not page.is_visible("#camera"), "the camera stops once the patient is identified"
    page.click("#confirm")
    page.wait_for_selector("#finish:visible")
    assert kiosk.terminal.ledger.is_settled(bill)
