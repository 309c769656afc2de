"""Liveness through the real service: a photo of an enrolled person never checks out, in any profile.

The kiosk camera is a presenter made from a real photograph (terminal/vision/liveness/render.py):
a rendered head that follows the prompts plays the live patient; the same photo swung as a flat
sheet plays the attacker. NIR and depth frames are synthesised for the face the terminal's own
detector finds (a stand-in for the registered sensors of an NIR or structured-light kiosk).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from numpy.typing import NDArray

from devkit.serving import serving
from terminal.app import Terminal, build_terminal
from terminal.config import DEFAULT_CONFIG, load
from terminal.demo_data import SAMPLE_BILL, seed_demo
from terminal.service.app import create_app
from terminal.store.bill_files import FileBillSource
from terminal.vision.liveness.synthetic import Scene, face_depth, flat_depth, nir_live, nir_print
from tests.fakes import FixedClock
from tests.presenting import demo_presenter, follow_prompts

PROFILES = ["rgb", "rgb+nir", "rgb+depth"]
TECH = {"Authorization": "Bearer tech"}
pytestmark = pytest.mark.usefixtures("require_models")


def _png(image: NDArray[Any]) -> bytes:
    ok, data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    assert ok
    return bytes(data)


@pytest.fixture
def service(
    request: pytest.FixtureRequest, data_dir: Path, clock: FixedClock, tmp_path: Path
) -> Iterator[tuple[str, Terminal]]:
    """The service on a terminal configured for the requested hardware profile, demo people enrolled."""
    config = load(DEFAULT_CONFIG)
    # A 2-second step limit instead of 6: the photo attempts end sooner, the rendered head needs ~0.5 s.
    challenge = config.liveness.challenge.model_copy(update={"step_timeout_s": 2.0})
    liveness = config.liveness.model_copy(update={"profile": request.param, "challenge": challenge})
    terminal = build_terminal(config.model_copy(update={"liveness": liveness}), data_dir, clock)
    seed_demo(terminal)
    bills = tmp_path / "bills"
    bills.mkdir()
    (bills / "op.json").write_text(SAMPLE_BILL.read_text(encoding="utf-8"), encoding="utf-8")
    app = create_app(terminal, bills=FileBillSource(bills), technician_token="tech", cashier_token="cash")
    try:
        with serving(app) as url:
            yield url, terminal
    finally:
        terminal.close()


def camera(
    http: httpx.Client, terminal: Terminal, live: bool
) -> Callable[[NDArray[np.uint8]], dict[str, Any]]:
    """Post each capture with what the profile's extra sensor would see of this presentation."""
    profile = terminal.config.liveness.profile
    scene = Scene(width=640, height=480)
    rng = np.random.default_rng(5)

    def send(image: NDArray[np.uint8]) -> dict[str, Any]:
        files: dict[str, tuple[str, bytes, str]] = {"image": ("camera.png", _png(image), "image/png")}
        faces = terminal.face_stage.detector.detect(image)
        if faces and profile != "rgb":
            box = max(faces, key=lambda b: b.width)
            if profile == "rgb+nir":
                grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
                nir = nir_live(scene, box, rng) if live else nir_print(scene, box, rng, grey)
                files["nir"] = ("nir.png", _png(nir.image), "image/png")
            else:
                depth = face_depth(scene, box, rng) if live else flat_depth(scene, box, rng, tilt_deg=10.0)
                mm = np.clip(depth.depth_mm, 0, 65535).astype(np.uint16)
                files["depth"] = ("depth.png", _png(mm), "image/png")
        response = http.post("/api/session/face", files=files)
        assert response.status_code == 200, response.text
        return dict(response.json())

    return send


@pytest.mark.parametrize("service", PROFILES, indirect=True)
def test_a_photo_of_an_enrolled_person_cannot_check_out(
    service: tuple[str, Terminal], clock: FixedClock
) -> None:
    url, terminal = service
    photo = demo_presenter(terminal, 2, kind="photo")
    with httpx.Client(base_url=url, timeout=60) as http:
        http.post("/api/session/start")
        limit = terminal.config.identity.max_face_attempts
        for left in range(limit - 1, -1, -1):
            view = follow_prompts(camera(http, terminal, live=False), photo, clock)
            assert (view["state"], view["result"], view["face_attempts_left"]) == (
                "identifying",
                "fail",
                left,
            )
            assert "score" not in str(view) and "parallax" not in str(view)
        assert not view["face_available"] and {"qr", "card", "id"} <= set(view["methods"])
        refused = http.post(
            "/api/session/face", files={"image": ("c.png", _png(photo.capture(None)), "image/png")}
        )
        assert refused.status_code == 409
        assert http.post("/api/session/confirm").status_code == 409
        assert http.get("/api/session/bills").status_code == 409
        attempts = http.get("/api/tech/diagnostics", headers=TECH).json()["session"]["recent_attempts"]
    assert [a["liveness"] for a in attempts] == ["fail"] * limit
    assert terminal.ledger.pending_outbox() == []


# rgb+depth is left out here: synthetic.face_depth builds a face surface from the landmarks that does
# not fit every pose of this rendered head (measured: some challenge orders fail the nose-relief test),
# so the result would depend on the random draw. Live depth is covered on synthetic subjects
# (tests/unit/vision/liveness) and the refusal of a flat photo in rgb+depth above.
@pytest.mark.parametrize("service", ["rgb", "rgb+nir"], indirect=True)
def test_the_live_person_checks_out(service: tuple[str, Terminal], clock: FixedClock) -> None:
    url, terminal = service
    with httpx.Client(base_url=url, timeout=60) as http:
        http.post("/api/session/start")
        view = follow_prompts(camera(http, terminal, live=True), demo_presenter(terminal, 2), clock)
        attempts = http.get("/api/tech/diagnostics", headers=TECH).json()["session"]["recent_attempts"]
        assert (view["state"], view["result"]) == ("identified", "pass"), attempts
        view = http.post("/api/session/bill", json={"chrg_bchno": "DEMO-OP-0001"}).json()
        assert view["state"] == "priced"
        assert http.post("/api/session/confirm").json()["state"] == "settled"
    assert terminal.ledger.is_settled("DEMO-OP-0001")


@pytest.mark.parametrize("service", ["rgb+depth"], indirect=True)
def test_a_missing_depth_frame_fails_closed(service: tuple[str, Terminal], clock: FixedClock) -> None:
    url, terminal = service
    live = demo_presenter(terminal, 2)
    with httpx.Client(base_url=url, timeout=60) as http:

        def rgb_only(image: NDArray[np.uint8]) -> dict[str, Any]:
            files = {"image": ("camera.png", _png(image), "image/png")}
            return dict(http.post("/api/session/face", files=files).json())

        view = follow_prompts(rgb_only, live, clock)
    assert (view["state"], view["result"]) == ("identifying", "fail")


def test_a_corrupt_depth_upload_is_a_clear_422(data_dir: Path, clock: FixedClock) -> None:
    terminal = build_terminal(load(DEFAULT_CONFIG), data_dir, clock)
    try:
        with serving(create_app(terminal)) as url:
            image = np.full((48, 64, 3), 128, np.uint8)
            files = {
                "image": ("c.png", _png(image), "image/png"),
                "depth": ("d.png", _png(image), "image/png"),  # 8-bit colour, not 16-bit depth
            }
            response = httpx.post(f"{url}/api/session/face", files=files, timeout=30)
    finally:
        terminal.close()
    assert response.status_code == 422 and "16-bit" in response.json()["detail"]
