"""Driving the real service as the kiosk page and the terminal's readers do."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from terminal.domain import CertType, IdentityClaim
from terminal.service.deps import Service
from tests.presenting import FRAME_STEP


def service_of(app: FastAPI) -> Service:
    """The collaborators create_app built (the session, the capture loop)."""
    svc: Service = app.state.service
    return svc


def reader_identifies(app: FastAPI, psn_no: str, cert: CertType = CertType.EC_TOKEN) -> dict[str, Any]:
    """What the reader worker does once a QR code or card is proven: hand the session a proven claim."""
    return service_of(app).checkout.identify_credential(IdentityClaim(cert, "read-by-reader", psn_no=psn_no))


def choose_bill(http: httpx.Client, chrg_bchno: str) -> httpx.Response:
    """Pick a bill for the session the screen shows."""
    session_id = http.get("/api/session").json()["session_id"]
    return http.post("/api/session/bill", json={"chrg_bchno": chrg_bchno, "session_id": session_id})


def confirm_shown(http: httpx.Client) -> httpx.Response:
    """Confirm exactly what the screen shows (session, bill and the digest of its amounts)."""
    view = http.get("/api/session").json()
    bill = view.get("bill") or {}
    return http.post(
        "/api/session/confirm",
        json={
            "session_id": view["session_id"],
            "chrg_bchno": bill.get("chrg_bchno", "-"),
            "amounts_digest": view.get("amounts_digest", "-"),
        },
    )


def hold_capture(app: FastAPI) -> None:
    """Stop the capture loop's thread: the test steps it, moving its clock (no wall-clock pacing)."""
    capture = service_of(app).capture
    assert capture is not None, "the app has a camera"
    capture.stop()


def run_face_attempt(app: FastAPI, clock: Any, max_frames: int = 600) -> dict[str, Any]:
    """Step the capture loop, a tenth of a second of the test clock per frame, until the attempt ends."""
    svc = service_of(app)
    capture = svc.capture
    assert capture is not None
    for _ in range(max_frames):
        if not svc.checkout.wants_frames():
            return svc.checkout.view()
        clock.at += FRAME_STEP
        capture.step()
    raise AssertionError(f"the face attempt never ended after {max_frames} frames")
