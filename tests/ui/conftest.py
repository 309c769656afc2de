"""Browser tests: headless Debian Chromium driven by Playwright against the real service.

Skips cleanly only when /usr/bin/chromium or the playwright package is missing (never downloads a browser).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest

from terminal.app import Terminal, build_terminal
from terminal.config import DEFAULT_CONFIG, load
from terminal.demo_data import SAMPLE_BILL, demo_faces, face_crop, insightface_image, seed_demo
from terminal.service.app import create_app
from terminal.service.wiring import FileBillSource
from terminal.store.keys import create_key
from terminal.vision.images import load_image
from tests.conftest import REPO, FixedClock, models_provisioned
from tests.ui.server import serving

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

    def __init__(self, url: str, terminal: Terminal, clock: FixedClock, bills: Path, probes: Path) -> None:
        self.url = url
        self.terminal = terminal
        self.clock = clock
        self.bills = bills
        self.probes = probes
        self._serial = 0

    def new_bill(self) -> str:
        """Put a fresh copy of the sample bill in the HIS folder; return its number."""
        self._serial += 1
        data: dict[str, Any] = json.loads(SAMPLE_BILL.read_text(encoding="utf-8"))
        data["chrg_bchno"] = f"UI-{self._serial:04d}"
        (self.bills / f"{data['chrg_bchno']}.json").write_text(json.dumps(data, ensure_ascii=False))
        return str(data["chrg_bchno"])

    def reset(self) -> None:
        """Back to idle whatever the last test left."""
        httpx.post(f"{self.url}/api/session/cancel", timeout=30)


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
    probes = root / "probes"
    probes.mkdir()
    clock = FixedClock()
    terminal = build_terminal(load(DEFAULT_CONFIG), data, clock)
    seed_demo(terminal)
    group = load_image(insightface_image("t1.jpg"))
    cv2.imwrite(str(probes / "zhang-wei.png"), face_crop(group, demo_faces(terminal)[2], 1.0))
    shutil.copy(insightface_image("Tom_Hanks_54745.png"), probes / "stranger.png")
    app = create_app(
        terminal,
        bills=FileBillSource(bills),
        cashier_token=CASHIER,
        technician_token=TECH,
        session_timeout=TIMEOUT,
        event_interval=0.2,
    )
    with serving(app) as url:
        yield Kiosk(url, terminal, clock, bills, probes)
    terminal.close()


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


def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under tests/artifacts/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
