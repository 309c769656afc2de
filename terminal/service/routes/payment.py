"""The checkout's paying step: the kiosk's QR, the counter's scanned payment code, polling the outcome.

After confirm the session waits in "paying" (pipeline/session_paying.py). The kiosk asks for a QR
(`/api/session/pay/qr`), shows it (`/api/session/pay/qr.svg`, drawn here from the gateway's code_url,
so the screen never loads anything from elsewhere) with a countdown, and polls
(`/api/session/pay/poll`, every `poll_s` of the view) until 已支付 or 没有扣费. The counter posts a
scanned payment code (`/api/session/pay/code`) when its barcode reader is not the one that read it.

No `from __future__ import annotations` here: FastAPI reads the route annotations at run time.
"""

import io
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel, Field

from terminal.app import Terminal
from terminal.errors import SessionStateError
from terminal.service.deps import Service


class PayRequest(BaseModel):
    """Which checkout the payment is for (the session shown on the screen)."""

    session_id: str = Field(min_length=1, max_length=64)


class PayCodeRequest(PayRequest):
    """A payment code (付款码) scanned at the counter."""

    auth_code: str = Field(min_length=10, max_length=32, pattern=r"^\s*\d+\s*$")


def payment_routes(svc: Service) -> APIRouter:
    """Routes of the paying step over the service's one session."""
    router = APIRouter(dependencies=[Depends(svc.at_the_terminal)])
    checkout = svc.checkout
    TerminalDep = Annotated[Terminal, Depends(svc.use_terminal)]

    def settled(view: dict[str, Any]) -> dict[str, Any]:
        # Both parts done: the HIS is told and the receipt printed now, as confirm does without a gateway.
        svc.notify_settled(view)
        if svc.receipts is not None and view.get("state") == "settled" and view.get("receipt"):
            svc.receipts.submit(view["receipt"])
        return view

    @router.post("/api/session/pay/qr")
    @svc.locked
    def pay_qr(term: TerminalDep, request: PayRequest) -> dict[str, Any]:
        """The patient chose to pay by scanning the kiosk's QR: the order is created (or shown again)."""
        return settled(checkout.pay_qr(request.session_id))

    @router.post("/api/session/pay/code")
    @svc.locked
    def pay_code(term: TerminalDep, request: PayCodeRequest) -> dict[str, Any]:
        """The counter scanned the patient's payment code: it is charged (USERPAYING then polled)."""
        return settled(checkout.pay_code(request.session_id, request.auth_code, actor="counter"))

    @router.post("/api/session/pay/poll")
    @svc.locked
    def pay_poll(term: TerminalDep) -> dict[str, Any]:
        """Ask the gateway once where the payment stands; the view says 已支付, 未支付 or 没有扣费."""
        return settled(checkout.poll_payment())

    @router.get("/api/session/pay/qr.svg")
    @svc.locked
    def pay_qr_image(term: TerminalDep) -> Response:
        """The QR of the order awaiting payment, as SVG (drawn on the terminal)."""
        payment = checkout.view().get("payment") or {}
        code_url = payment.get("code_url")
        if not code_url:
            raise SessionStateError("no QR payment is awaited")
        out = io.BytesIO()
        segno.make(str(code_url), error="m").save(out, kind="svg", scale=8, border=4, xmldecl=False)
        return Response(out.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "no-store"})

    return router
