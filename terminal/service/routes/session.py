"""The checkout session, patient side (the kiosk browser runs on this machine).

No `from __future__ import annotations` here: FastAPI reads the route annotations at run time.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.requests import Request

from terminal.app import Terminal
from terminal.domain import SettledNotice
from terminal.errors import BillError, DeviceError, SessionChangedError
from terminal.pipeline.identify import claim_from_input
from terminal.pipeline.session import SessionStateError
from terminal.service.deps import LOOPBACK, Service
from terminal.service.schemas import (
    BillChoice,
    ConfirmRequest,
    CredentialRequest,
    SecondFactorRequest,
    SessionRef,
)


def session_routes(svc: Service) -> APIRouter:
    """Routes of the patient's checkout session over the service's one session."""
    router = APIRouter(dependencies=[Depends(svc.at_the_terminal)])
    checkout = svc.checkout
    TerminalDep = Annotated[Terminal, Depends(svc.use_terminal)]

    @router.get("/api/session")
    @svc.locked
    def session_view(term: TerminalDep) -> dict[str, Any]:
        """The session as the patient's screen shows it."""
        checkout.tick()
        return checkout.view()

    @router.post("/api/session/start")
    @svc.locked
    def session_start(term: TerminalDep) -> dict[str, Any]:
        """A patient begins a checkout."""
        return checkout.start()

    @router.post("/api/session/face/start")
    @svc.locked
    def session_face_start(term: TerminalDep) -> dict[str, Any]:
        """The patient taps face: the terminal's own camera feeds the challenge (no frame comes from here)."""
        return checkout.begin_face()

    @router.get("/api/session/camera")
    async def session_camera(request: Request) -> StreamingResponse:
        """The camera preview as MJPEG for the kiosk screen; only on this machine, only while identifying."""
        if svc.capture is None:
            raise DeviceError("this terminal has no camera configured")
        if request.client is None or request.client.host not in LOOPBACK:
            # The kiosk browser runs on this machine; nobody on the LAN watches the patient's face.
            raise HTTPException(status_code=403, detail="the camera preview is shown on this terminal only")
        capture = svc.capture
        slot = svc.streams.take("camera preview")

        async def frames() -> AsyncIterator[bytes]:
            serial = 0
            try:
                while not slot.expired() and not await request.is_disconnected():
                    serial, jpeg = await anyio.to_thread.run_sync(capture.preview, serial, svc.event_interval)
                    if jpeg is not None and checkout.previewing():
                        yield b"--frame\r\nContent-Type: image/jpeg\r\n\r\n" + jpeg + b"\r\n"
                    await asyncio.sleep(0)
            finally:
                slot.release()

        return StreamingResponse(
            frames(),
            media_type="multipart/x-mixed-replace; boundary=frame",
            headers={"Cache-Control": "no-store"},
            background=BackgroundTask(slot.release),  # also when the stream never started
        )

    @router.post("/api/session/credential")
    @svc.locked
    def session_credential(term: TerminalDep, request: CredentialRequest) -> dict[str, Any]:
        """A typed ID number: it names whom the face check verifies next (QR and card come from readers)."""
        return checkout.identify_credential(claim_from_input(request.method, request.value))

    @router.post("/api/session/second-factor")
    @svc.locked
    def session_second_factor(term: TerminalDep, request: SecondFactorRequest) -> dict[str, Any]:
        """The ID number's last four after a passed face challenge (gallery above the 1:N cap)."""
        return checkout.second_factor(request.last4)

    # The bill source is asked outside the terminal lock: a slow HIS (up to its timeout) must never hold
    # a QR / card / ID identification or the pharmacy counter behind it.
    @router.get("/api/session/bills")
    def session_bills() -> dict[str, Any]:
        """Pending bills of the identified patient (already settled ones left out)."""
        psn_no = checkout.psn_no
        if psn_no is None:
            raise SessionStateError("identify the patient first")
        listed = svc.source.pending(psn_no)
        with svc.hold("terminal"):
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
        if psn_no is None or checkout.session_id != choice.session_id:
            raise SessionChangedError("identify the patient first, in the checkout shown on the screen")
        # Only a bill the source lists for this patient: anyone else's would be paid from this person's fund.
        if choice.chrg_bchno not in {b.chrg_bchno for b in svc.source.pending(psn_no)}:
            raise BillError(f"bill {choice.chrg_bchno} is not pending for the identified patient")
        bill = svc.source.get(choice.chrg_bchno)
        with svc.hold("terminal"):
            # The session checks, under its lock, that it is still the one and the patient is the owner.
            view = checkout.load_bill(bill, choice.session_id, owner=psn_no)
        svc.notices.loaded(bill.chrg_bchno)
        return view

    @router.post("/api/session/confirm")
    @svc.locked
    def session_confirm(term: TerminalDep, request: ConfirmRequest) -> dict[str, Any]:
        """The patient confirms what the screen showed: recorded once, refused if anything changed."""
        view = checkout.confirm(request.session_id, request.chrg_bchno, request.amounts_digest)
        svc.notify_settled(view)
        if svc.receipts is not None and view.get("state") == "settled" and view.get("receipt"):
            # Queued, not awaited: the settlement is recorded already and a printer fault must not change
            # this answer; the journal keeps a retried confirm from printing the same msgid twice.
            svc.receipts.submit(view["receipt"])
        return view

    @router.post("/api/session/cancel")
    @svc.locked
    def session_cancel(term: TerminalDep) -> dict[str, Any]:
        """Cancel the checkout, from any state before recording."""
        return checkout.cancel()

    @router.post("/api/session/finish")
    @svc.locked
    def session_finish(term: TerminalDep) -> dict[str, Any]:
        """The receipt was taken; back to the welcome screen."""
        return checkout.finish()

    @router.post("/api/session/bills/back")
    @svc.locked
    def session_back_to_bills(term: TerminalDep, request: SessionRef) -> dict[str, Any]:
        """Back from a priced bill to the patient's bill list, nothing confirmed."""
        return checkout.back_to_bills(request.session_id)

    @router.post("/api/session/keepalive")
    @svc.locked
    def session_keepalive(term: TerminalDep) -> dict[str, Any]:
        """The patient tapped 继续 on the timeout warning: the step's time starts again."""
        return checkout.keep_alive()

    @router.get("/api/session/print")
    def session_print() -> dict[str, str]:
        """Whether the receipt on the screen was printed: printed, printing, failed or none (no printer)."""
        receipt = checkout.view().get("receipt") or {}
        msgid = str(receipt.get("msgid") or "")
        if svc.receipts is None or not msgid:
            return {"print": "none"}
        with svc.hold("terminal"):
            state = svc.receipts.journal.state(msgid)
        # Not claimed yet: the job waits in the printer's queue.
        return {"print": state or "printing"}

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

        slot = svc.streams.take("session events")

        async def stream() -> AsyncIterator[str]:
            since = -1
            try:
                # Ends after [service] stream_max_s: EventSource reconnects by itself, and a stream whose
                # client vanished without a disconnect cannot hold its place for ever.
                while not slot.expired() and not await request.is_disconnected():
                    since, view = await anyio.to_thread.run_sync(next_view, since)
                    if view is not None:
                        yield f"event: state\ndata: {json.dumps(view, ensure_ascii=False)}\n\n"
                    else:
                        yield ": keep-alive\n\n"
                    await asyncio.sleep(0)
            finally:
                slot.release()

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store"},
            background=BackgroundTask(slot.release),  # also when the stream never started
        )

    return router
