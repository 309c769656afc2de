"""Browser tests: headless Debian Chromium driven by Playwright against the real service.

Skips cleanly only when /usr/bin/chromium or the playwright package is missing (never downloads a browser).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest

from devkit.serving import serving
from terminal.app import Terminal, build_terminal
from terminal.config import DEFAULT_CONFIG, load
from terminal.demo_data import SAMPLE_BILL, demo_faces, face_crop, insightface_image, seed_demo
from terminal.service.app import create_app
from terminal.store.bill_files import FileBillSource
from terminal.store.keys import create_key
from terminal.vision.images import load_image
from terminal.vision.liveness.render import CUE_POSE, Presenter, head_view, plane_view
from tests.conftest import REPO, models_provisioned
from tests.fakes import FixedClock

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "tests" / "artifacts"
CASHIER = "cashier-ui-token"
TECH = "tech-ui-token"
TIMEOUT = timedelta(seconds=120)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _playwright_missing() -> str | None:
    if not CHROMIUM.is_file():
        return "/usr/bin/chromium is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the browser tests when Chromium or Playwright is absent; only then."""
    reason = _playwright_missing()
    if reason is None:
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(f"CI must run the browser tests, but {reason}")
    for item in items:
        if "tests/ui/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.skip(reason=reason))


class Kiosk:
    """The running service with its terminal, clock and bill folder."""

    def __init__(
        self, url: str, terminal: Terminal, clock: FixedClock, bills: Path, cameras: dict[str, str]
    ) -> None:
        self.url = url
        self.terminal = terminal
        self.clock = clock
        self.bills = bills
        self.cameras = cameras
        self._serial = 0

    def new_bill(self) -> str:
        """Put a fresh copy of the sample bill in the HIS folder; return its number."""
        self._serial += 1
        data: dict[str, Any] = json.loads(SAMPLE_BILL.read_text(encoding="utf-8"))
        data["chrg_bchno"] = f"UI-{self._serial:04d}"
        (self.bills / f"{data['chrg_bchno']}.json").write_text(json.dumps(data, ensure_ascii=False))
        return str(data["chrg_bchno"])

    def reset(self) -> None:
        """Back to idle whatever the last test left, the clock past the face-failure window."""
        httpx.post(f"{self.url}/api/session/cancel", timeout=30)
        # Failed face attempts count across sessions for face_lockout_s; each test starts afresh.
        self.clock.at += timedelta(seconds=self.terminal.config.identity.face_lockout_s + 1)


@pytest.fixture(scope="session")
def kiosk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kiosk]:
    """The real service on 127.0.0.1 with the demo people enrolled from t1.jpg by the real models."""
    if _playwright_missing() is not None:
        pytest.skip(str(_playwright_missing()))
    if not models_provisioned():
        pytest.skip("models not provisioned; run `medpay-provision models`")
    root = tmp_path_factory.mktemp("ui")
    data = root / "data"
    create_key(data)
    bills = root / "bills"
    bills.mkdir()
    clock = FixedClock()
    terminal = build_terminal(load(DEFAULT_CONFIG), data, clock)
    seed_demo(terminal)
    group = load_image(insightface_image("t1.jpg"))
    zhang_wei = Presenter.from_photo(
        face_crop(group, demo_faces(terminal)[2], 1.0), terminal.face_stage.detector, "live"
    )
    cameras = {kind: camera_script(zhang_wei, kind) for kind in ("live", "photo")}
    app = create_app(
        terminal,
        bills=FileBillSource(bills),
        cashier_token=CASHIER,
        technician_token=TECH,
        session_timeout=TIMEOUT,
        event_interval=0.2,
    )
    with serving(app) as url:
        yield Kiosk(url, terminal, clock, bills, cameras)
    terminal.close()


# Replaces the browser's camera with a canvas that shows, for each movement the kiosk asks for
# (camera-box's data-cue), the pose a cooperative presenter takes: a rendered head ("live") or the
# same photo swung as a flat sheet ("photo"). One pixel changes per frame, as sensor noise does.
CAMERA_JS = """
(() => {
  const poses = %s;
  const images = {};
  for (const [cue, url] of Object.entries(poses)) { images[cue] = new Image(); images[cue].src = url; }
  navigator.mediaDevices.getUserMedia = async () => {
    const canvas = document.createElement("canvas");
    canvas.width = 640; canvas.height = 480;
    const context = canvas.getContext("2d");
    let tick = 0;
    const draw = () => {
      const box = document.getElementById("camera-box");
      const image = images[(box && box.dataset.cue) || "centre"] || images.centre;
      if (image.complete) context.drawImage(image, 0, 0);
      context.fillStyle = `rgb(${tick %% 256}, 0, 0)`;
      context.fillRect(tick %% 640, 479, 1, 1);
      tick += 1;
    };
    draw();
    setInterval(draw, 40);
    return canvas.captureStream(25);
  };
})();
"""


def camera_script(presenter: Presenter, kind: str) -> str:
    """An init script making the page's camera a presenter of `kind` ("live" or "photo")."""
    poses = {}
    for cue, (yaw, pitch) in CUE_POSE.items():
        if kind == "live":
            view = head_view(presenter.canvas, presenter.landmarks, yaw, pitch)
        else:
            view = plane_view(presenter.canvas, 1.5 * yaw, 1.5 * pitch)
        ok, jpeg = cv2.imencode(".jpg", view, [cv2.IMWRITE_JPEG_QUALITY, 92])
        assert ok
        poses[cue] = "data:image/jpeg;base64," + base64.b64encode(bytes(jpeg)).decode()
    return CAMERA_JS % json.dumps(poses)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, kiosk: Kiosk) -> Iterator[Any]:
    """A fresh page at 1280×900 (a kiosk screen), the session idle."""
    kiosk.reset()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    context.set_default_timeout(20_000)
    pg = context.new_page()
    yield pg
    context.close()
    kiosk.reset()


def _camera_page(browser: Any, kiosk: Kiosk, kind: str) -> Iterator[Any]:
    kiosk.reset()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    context.add_init_script(kiosk.cameras[kind])
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()
    kiosk.reset()


@pytest.fixture
def live_camera(browser: Any, kiosk: Kiosk) -> Iterator[Any]:
    """A kiosk page whose camera shows 张伟 (enrolled) moving his head as the prompts ask."""
    yield from _camera_page(browser, kiosk, "live")


@pytest.fixture
def photo_camera(browser: Any, kiosk: Kiosk) -> Iterator[Any]:
    """A kiosk page whose camera shows a photo of 张伟 swung to follow the prompts (a print attack)."""
    yield from _camera_page(browser, kiosk, "photo")


def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under tests/artifacts/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
