"""The checkout session, patient side (the kiosk browser runs on this machine).

No `from __future__ import annotations` here: FastAPI reads the route annotations at run time.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, File, UploadFile
from fastapi.responses import StreamingResponse
from starlette.requests import Request

from terminal.app import Terminal
from terminal.domain import SettledNotice
from terminal.errors import BillError
from terminal.pipeline.capture import frame_from_bytes
from terminal.pipeline.identify import LOWER_MASK_PROMPT, claim_from_input
from terminal.pipeline.session import SessionStateError
from terminal.service.deps import Service, read_upload
from terminal.service.schemas import BillChoice, CredentialRequest
from terminal.vision.images import decode_depth_mm, decode_gray
from terminal.vision.liveness.sources import SensorFrame
from terminal.vision.liveness.types import DepthFrame, NirFrame
from terminal.vision.quality import MASK_REASON


def session_routes(svc: Service) -> APIRouter:
    """Routes of the patient's checkout session over the service's one session."""
    router = APIRouter()
    checkout = svc.checkout
    TerminalDep = Annotated[Terminal, Depends(svc.use_terminal)]

    @router.get("/api/session")
    def session_view(term: TerminalDep) -> dict[str, Any]:
        """The session as the patient's screen shows it."""
        checkout.tick()
        return checkout.view()

    @router.post("/api/session/start")
    def session_start(term: TerminalDep) -> dict[str, Any]:
        """A patient begins a checkout."""
        return checkout.start()

    @router.post("/api/session/face")
    def session_face(
        term: TerminalDep,
        image: Annotated[UploadFile, File(description="an RGB camera frame (JPEG or PNG)")],
        nir: Annotated[UploadFile | None, File(description="the registered NIR frame, 8-bit")] = None,
        depth: Annotated[UploadFile | None, File(description="registered depth, 16-bit PNG in mm")] = None,
    ) -> dict[str, Any]:
        """One capture on the face path: liveness challenge, then 1:N; state and prompt only.

        No client-supplied claim: a 1:1 claim would let the page pick whom to verify against and skip
        1:N's refusal of ambiguous matches.
        """
        at = term.clock.now()
        sensors = SensorFrame(
            rgb=frame_from_bytes(read_upload(image), image.filename or "camera", term.clock),
            nir=NirFrame(decode_gray(read_upload(nir)), at) if nir is not None else None,
            depth=DepthFrame(decode_depth_mm(read_upload(depth)), term.config.liveness.depth.focal_px, at)
            if depth is not None
            else None,
        )
        return checkout.face_frame(sensors)

    @router.post("/api/session/preview")
    def session_preview(
        term: TerminalDep,
        image: Annotated[UploadFile, File(description="a preview frame from the kiosk camera")],
    ) -> dict[str, Any]:
        """Where the usable faces are in a preview frame (boxes only: nobody is identified here)."""
        frame = frame_from_bytes(read_upload(image), "preview", term.clock)
        # Detection and the quality gate only: a preview frame never pays for the embedder.
        usable, reasons = term.face_stage.usable(frame)
        boxes = [[round(b.x1, 1), round(b.y1, 1), round(b.x2, 1), round(b.y2, 1)] for b in usable]
        if not boxes and MASK_REASON in reasons:
            return {"faces": [], "prompt": LOWER_MASK_PROMPT}
        return {"faces": boxes, "prompt": "hold_still" if len(boxes) == 1 else "look_at_camera"}

    @router.post("/api/session/credential")
    def session_credential(term: TerminalDep, request: CredentialRequest) -> dict[str, Any]:
        """Identify by QR code, social-security card or ID number."""
        return checkout.identify_credential(claim_from_input(request.method, request.value))

    # The bill source is asked outside the terminal lock: a slow HIS (up to its timeout) must never hold
    # a QR / card / ID identification or the pharmacy counter behind it.
    @router.get("/api/session/bills")
    def session_bills() -> dict[str, Any]:
        """Pending bills of the identified patient (already settled ones left out)."""
        psn_no = checkout.psn_no
        if psn_no is None:
            raise SessionStateError("identify the patient first")
        listed = svc.source.pending(psn_no)
        with svc.lock:
            settled = {b.chrg_bchno: svc.terminal.ledger.settlement_of(b.chrg_bchno) for b in listed}
        for chrg_bchno, row in settled.items():
            if row is not None:
                # Settled here but still pending at the HIS: its notice is late or was never queued.
                svc.notices.settled(SettledNotice.from_ledger(chrg_bchno, row), listed=True)
        return {"bills": [b.as_json() for b in listed if settled[b.chrg_bchno] is None]}

    @router.post("/api/session/bill")
    def session_bill(choice: BillChoice) -> dict[str, Any]:
        """Load one of the identified patient's pending bills and show its pre-settlement."""
        psn_no = checkout.psn_no
        if psn_no is None:
            raise SessionStateError("identify the patient first")
        # Only a bill the source lists for this patient: anyone else's would be paid from this person's fund.
        if choice.chrg_bchno not in {b.chrg_bchno for b in svc.source.pending(psn_no)}:
            raise BillError(f"bill {choice.chrg_bchno} is not pending for the identified patient")
        bill = svc.source.get(choice.chrg_bchno)
        svc.notices.loaded(bill.chrg_bchno)
        with svc.lock:
            return checkout.load_bill(bill)

    @router.post("/api/session/confirm")
    def session_confirm(term: TerminalDep) -> dict[str, Any]:
        """The patient confirms: record the settlement once and show the receipt (and print it)."""
        view = checkout.confirm()
        svc.notify_settled(view)
        if svc.receipts is not None and view.get("state") == "settled" and view.get("receipt"):
            # Queued, not awaited: the settlement is recorded already and a printer fault must not change
            # this answer; the journal keeps a retried confirm from printing the same msgid twice.
            svc.receipts.submit(view["receipt"])
        return view

    @router.post("/api/session/cancel")
    def session_cancel(term: TerminalDep) -> dict[str, Any]:
        """Cancel the checkout, from any state before recording."""
        return checkout.cancel()

    @router.post("/api/session/finish")
    def session_finish(term: TerminalDep) -> dict[str, Any]:
        """The receipt was taken; back to the welcome screen."""
        return checkout.finish()

    @router.get("/api/session/events")
    async def session_events(request: Request) -> StreamingResponse:
        """Server-sent events: the session view each time it changes (and timeouts as they fire)."""

        def next_view(since: int) -> tuple[int, dict[str, Any] | None]:
            version = checkout.wait_for_change(since, svc.event_interval)
            # Timeouts run on the injected clock; never queue behind a face check for them.
            if svc.lock.acquire(blocking=False):
                try:
                    checkout.tick()
                finally:
                    svc.lock.release()
            version = checkout.version
            return version, (checkout.view() if version != since else None)

        async def stream() -> AsyncIterator[str]:
            since = -1
            while not await request.is_disconnected():
                since, view = await anyio.to_thread.run_sync(next_view, since)
                if view is not None:
                    yield f"event: state\ndata: {json.dumps(view, ensure_ascii=False)}\n\n"
                else:
                    yield ": keep-alive\n\n"
                await asyncio.sleep(0)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    return router
