"""Browser tests: headless Debian Chromium driven by Playwright against the real service.

Skips cleanly only when /usr/bin/chromium or the playwright package is missing (never downloads a browser).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from devkit.serving import serving
from terminal.app import Terminal, build_terminal
from terminal.app.demo_faces import demo_presenter
from terminal.config import DEFAULT_CONFIG, TerminalConfig, load
from terminal.demo_data import DEMO_PEOPLE, SAMPLE_BILL, seed_demo
from terminal.service.app import create_app
from terminal.store.bill_files import FileBillSource
from terminal.store.keys import create_key
from terminal.vision.camera import PresenterKind, open_camera
from terminal.vision.liveness.render import Presenter
from terminal.vision.liveness.sources import SensorFrame
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
    """The running service with its terminal, clock, bill folder and the synthetic camera's presenter."""

    def __init__(
        self, url: str, terminal: Terminal, clock: FixedClock, bills: Path, camera: CameraStand
    ) -> None:
        self.url = url
        self.terminal = terminal
        self.clock = clock
        self.bills = bills
        self.camera = camera
        # The enrolled patient the synthetic camera's presenter shows (the demo's 张伟 of t1.jpg).
        self.patient = DEMO_PEOPLE[camera.index]
        self._serial = 0

    def new_bill(self) -> str:
        """Put a fresh copy of the sample bill in the HIS folder; return its number."""
        self._serial += 1
        data: dict[str, Any] = json.loads(SAMPLE_BILL.read_text(encoding="utf-8"))
        data["chrg_bchno"] = f"UI-{self._serial:04d}"
        (self.bills / f"{data['chrg_bchno']}.json").write_text(json.dumps(data, ensure_ascii=False))
        return str(data["chrg_bchno"])

    def present(self, kind: PresenterKind) -> None:
        """Who stands before the terminal's camera: the enrolled patient ("live") or his photo."""
        self.camera.present(kind)

    def reset(self) -> None:
        """Back to idle whatever the last test left, the terminal-wide failure window forgotten."""
        httpx.post(f"{self.url}/api/session/cancel", timeout=30)
        # Failures count terminal-wide (and may pause face): each test starts afresh, as after the
        # technician's reset.
        reset = httpx.post(f"{self.url}/api/tech/identity/reset", headers=bearer(TECH), timeout=30)
        reset.raise_for_status()
        self.clock.at += timedelta(seconds=1)
        self.camera.present(self.camera.kind)


def require_browser_and_models() -> None:
    """Skip (as the browser tests do) without Chromium, Playwright or the provisioned models."""
    if _playwright_missing() is not None:
        pytest.skip(str(_playwright_missing()))
    if not models_provisioned():
        pytest.skip("models not provisioned; run `medpay-provision models`")


@contextmanager
def served_kiosk(root: Path, config: TerminalConfig) -> Iterator[Kiosk]:
    """The real service of `config` on 127.0.0.1 in `root`, the demo people enrolled, a synthetic camera."""
    data = root / "data"
    create_key(data)
    bills = root / "bills"
    bills.mkdir()
    clock = FixedClock()
    terminal = build_terminal(config, data, clock)
    seed_demo(terminal)
    camera = CameraStand(terminal, clock)
    app = create_app(
        terminal,
        bills=FileBillSource(bills),
        cashier_token=CASHIER,
        technician_token=TECH,
        session_timeout=TIMEOUT,
        event_interval=0.2,
        camera=camera,
    )
    with serving(app) as url:
        yield Kiosk(url, terminal, clock, bills, camera)
    camera.close()
    terminal.close()


@pytest.fixture(scope="session")
def kiosk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kiosk]:
    """The real service on 127.0.0.1, the demo people enrolled by the real models, a synthetic camera."""
    require_browser_and_models()
    with served_kiosk(tmp_path_factory.mktemp("ui"), load(DEFAULT_CONFIG)) as served:
        yield served


class CameraStand:
    """The terminal's camera in these tests: the demo config's synthetic camera, live or photo.

    Two cameras the camera helper's URLs build (`synthetic://live`, `synthetic://photo`), both showing
    the configured demo presenter (张伟 of t1.jpg); `present` (a test hook, no HTTP route) picks which
    one stands before the terminal. Each read moves the test clock on by one frame at the configured
    rate, as a real camera's frames are that far apart (the liveness stage admits frames by timestamp).
    """

    def __init__(self, terminal: Terminal, clock: FixedClock) -> None:
        section = terminal.config.camera
        self.index = section.demo_presenter
        self.presenters: dict[str, Presenter] = {}

        def presenter_for(kind: PresenterKind) -> Presenter:
            self.presenters[kind] = demo_presenter(terminal, self.index, kind)
            return self.presenters[kind]

        self.cameras = {
            kind: open_camera(
                section.model_copy(update={"url": f"synthetic://{kind}"}),
                terminal.config.terminal.mode,
                clock,
                presenter_for,
            )
            for kind in ("live", "photo")
        }
        self.kind: PresenterKind = "live"
        self._clock = clock
        self._frame = timedelta(seconds=1 / section.max_fps)

    def present(self, kind: PresenterKind) -> None:
        """`kind` stands before the camera, facing the screen (no pose left from the last test's cue)."""
        self.kind = kind
        for presenter in self.presenters.values():
            presenter.yaw = presenter.pitch = 0.0
        self.set_cue(None)

    def read(self) -> SensorFrame:
        """The next capture of whoever stands there, one frame interval after the last."""
        self._clock.at += self._frame
        return self.cameras[self.kind].read()

    def set_cue(self, cue: str | None) -> None:
        """Both presenters read the cue (only the one shown moves on it)."""
        for camera in self.cameras.values():
            camera.set_cue(cue)

    def close(self) -> None:
        """Release both cameras."""
        for camera in self.cameras.values():
            camera.close()

    def describe(self) -> dict[str, str]:
        """The camera shown now, as the technician page lists it."""
        return self.cameras[self.kind].describe()


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of a staff token."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember whether a test's body failed, so its page fixture can keep the evidence."""
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


def keep_evidence(request: pytest.FixtureRequest, page: Any, kiosk: Kiosk) -> None:
    """After a failed test: the page's screenshot, its text and the session the service holds."""
    if not request.node.stash.get(_CALL_FAILED, False):
        return
    folder = ARTIFACTS / "failed"
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / request.node.name.replace("/", "_")
    parts = []
    try:
        page.screenshot(path=str(stem.with_suffix(".png")), full_page=True)
        parts.append(f"url: {page.url}\n--- page text ---\n{page.inner_text('body', timeout=5_000)}")
    except Exception as error:  # the page may be what broke; the rest is still worth keeping
        parts.append(f"page unavailable: {error!r}")
    try:
        session = httpx.get(f"{kiosk.url}/api/session", timeout=30)
        parts.append(f"--- /api/session ({session.status_code}) ---\n{session.text}")
    except httpx.HTTPError as error:
        parts.append(f"session unavailable: {error!r}")
    text = "\n".join(parts)
    stem.with_suffix(".txt").write_text(text, encoding="utf-8")
    # in the report too: a CI log is often all there is of a failure that does not repeat
    logging.getLogger(__name__).error("failed browser test, evidence in %s.*:\n%s", stem, text[:3000])


@pytest.fixture
def page(request: pytest.FixtureRequest, browser: Any, kiosk: Kiosk) -> Iterator[Any]:
    """A fresh page at 1280×900 (a kiosk screen), the session idle."""
    kiosk.reset()
    # Playwright's wait_for_function evaluates its predicate with eval, which the pages' CSP forbids;
    # test_csp.py loads every page with the CSP enforced.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN", bypass_csp=True)
    context.set_default_timeout(20_000)
    pg = context.new_page()
    yield pg
    keep_evidence(request, pg, kiosk)
    context.close()
    kiosk.reset()


def _camera_page(request: pytest.FixtureRequest, browser: Any, kiosk: Kiosk, kind: str) -> Iterator[Any]:
    kiosk.reset()
    kiosk.present(kind)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN", bypass_csp=True)
    context.set_default_timeout(30_000)
    pg = context.new_page()
    yield pg
    keep_evidence(request, pg, kiosk)
    context.close()
    kiosk.reset()
    kiosk.present("live")


@pytest.fixture
def live_camera(request: pytest.FixtureRequest, browser: Any, kiosk: Kiosk) -> Iterator[Any]:
    """A kiosk page; the terminal's camera shows an enrolled patient moving his head as the prompts ask."""
    yield from _camera_page(request, browser, kiosk, "live")


@pytest.fixture
def photo_camera(request: pytest.FixtureRequest, browser: Any, kiosk: Kiosk) -> Iterator[Any]:
    """A kiosk page; the terminal's camera shows a photo of that patient swung to follow the prompts."""
    yield from _camera_page(request, browser, kiosk, "photo")


# Request bodies that would carry a picture: the page sends JSON taps only.
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"RIFF")


def frames_sent(requests: list[Any]) -> list[str]:
    """The recorded page requests that carry a multipart, binary or image body."""
    bad = []
    for request in requests:
        kind = (request.headers.get("content-type") or "").lower()
        body = request.post_data_buffer or b""
        if kind.startswith(("multipart/", "image/", "application/octet-stream")) or body.startswith(
            IMAGE_MAGIC
        ):
            bad.append(f"{request.method} {request.url} {kind}")
    return bad


def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under tests/artifacts/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
