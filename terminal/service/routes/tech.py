"""The technician's routes (token); health and metrics are in routes/health.py.

No `from __future__ import annotations` here: FastAPI reads the route annotations at run time.
"""

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, UploadFile

from terminal import __version__
from terminal.app import Terminal
from terminal.config import models_folder
from terminal.diagnostics import device_checks, run_checks
from terminal.errors import TerminalError
from terminal.operations import identify_faces
from terminal.pipeline.capture import frame_from_bytes
from terminal.service.deps import Service, read_upload
from terminal.store.reconcile import difference_count
from terminal.vision.manifest import load_manifest


def tech_routes(svc: Service) -> APIRouter:
    """Identification checks and diagnostics behind the technician's token."""
    router = APIRouter()
    TerminalDep = Annotated[Terminal, Depends(svc.use_terminal)]

    # A 1:N lookup on an uploaded picture has no liveness and no attempt limit: technicians only.
    @router.post("/api/identify", dependencies=[Depends(svc.technician)])
    @svc.locked
    def identify(
        term: TerminalDep,
        image: Annotated[UploadFile, File(description="a camera frame (JPEG or PNG)")],
        claim: Annotated[str | None, Form(description="psn_no claimed by a credential (1:1)")] = None,
    ) -> dict[str, Any]:
        """Technician check: who is in an uploaded image (box, landmarks, person id per face; no score).

        Never identifies into the checkout session, and rate-limited so it cannot serve as a 1:N oracle.
        """
        svc.identify_checks.take()
        frame = frame_from_bytes(read_upload(image), image.filename or "upload", term.clock)
        return {"faces": [face.as_json() for face in identify_faces(term, frame, claim)]}

    @router.get("/api/tech/identity", dependencies=[Depends(svc.technician)])
    def tech_identity() -> dict[str, Any]:
        """The terminal-wide failure window: whether face is paused, until when, the newest attempts."""
        with svc.hold("terminal"):
            return svc.checkout.limits.state()

    @router.post("/api/tech/identity/reset", dependencies=[Depends(svc.technician)])
    def tech_identity_reset() -> dict[str, Any]:
        """Lift face's pause and forget the window's failures (after the technician has looked why)."""
        with svc.hold("terminal"):
            svc.checkout.limits.reset()
            return svc.checkout.limits.state()

    @router.get("/api/tech/supervision", dependencies=[Depends(svc.technician)])
    @svc.locked
    def tech_supervision(term: TerminalDep) -> dict[str, Any]:
        """Fund supervision: the newest refusals and flags with their reasons, and 政策找人 hints."""
        return {"events": term.supervision_log.recent(50)}

    @router.get("/api/tech/diagnostics", dependencies=[Depends(svc.technician)])
    def tech_diagnostics() -> dict[str, Any]:
        """Gallery size, outbox depth, models, reconciliation, recent attempts, devices, receipt printing."""
        # Probed before taking the terminal lock: a probe waits on ports for up to seconds, and a
        # patient's checkout must not queue behind it.
        device_rows = svc.devices.rows()
        with svc.hold("terminal"):
            out = _terminal_diagnostics(svc)
        return {
            **out,
            "devices": device_rows,
            "receipt_printer": svc.receipts.status() if svc.receipts else None,
            "his_notices": svc.notices.journal.summary(),
        }

    @router.get("/api/tech/checks", dependencies=[Depends(svc.technician)])
    def tech_checks() -> dict[str, Any]:
        """The checks of `medpay doctor`: name, ok, detail and fix of each, in the order to fix them."""
        # Ports first, outside the terminal lock (a probe listens for up to a second per reader).
        devices = device_checks(svc.terminal.config)
        with svc.hold("checks"):
            checks = run_checks(svc.terminal, devices)
        return {"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}

    return router


def _identity(term: Terminal) -> dict[str, Any]:
    """The threshold and metric in force (the embedder's measured point or stricter), the 1:N cap, tries."""
    try:
        point: dict[str, Any] = term.operating_point.describe()
    except TerminalError as exc:
        point = {"error": str(exc)}
    identity = term.config.identity
    return {
        **point,
        "max_face_attempts": identity.max_face_attempts,
        "max_credential_attempts": identity.max_credential_attempts,
        "face_pause": {
            "failures": identity.face_pause_failures,
            "window_s": identity.face_pause_window_s,
            "pause_s": identity.face_pause_s,
        },
    }


def _terminal_diagnostics(svc: Service) -> dict[str, Any]:
    """Gallery size, outbox depth, model versions, reconciliation differences, recent attempts."""
    term = svc.terminal
    try:
        manifest = load_manifest(models_folder(term.config))
        # Optional models (the passive anti-spoofing pack) are listed only while enabled.
        passive = term.config.liveness.passive.enabled
        models = [
            {"name": m.name, "task": m.task, "file": m.file, "sha256": m.sha256[:12], "default": m.default}
            for m in manifest.model
            if m.default or (passive and m.source.kind == "local-pack")
        ]
    except TerminalError as exc:
        models = [{"error": str(exc)}]
    return {
        "terminal_id": term.config.terminal.terminal_id,
        "version": __version__,
        "gallery_size": term.gallery.size(),
        "outbox_pending": len(term.ledger.pending_outbox(limit=100000)),
        "reconcile_differences": difference_count(term.db),
        "models": models,
        "identity": _identity(term),
        "session": svc.checkout.diagnostics(),
        "camera": svc.capture.state() if svc.capture else None,
    }
