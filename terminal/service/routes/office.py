"""Counter operations by named staff: sign-in, refunds (退费) with a supervisor's approval, reprints (补打),
the day's settlements and the daily reconciliation (对账).

Money operations (refund, reprint) need a staff member's own sign-in (a short-lived signed token), never
the shared cashier token; the audit names that person. Reading the day's list and report also accepts
the cashier's or the technician's token. A refund's approval is asked for by the signed-in cashier and
names the settlement, the amount and that cashier; it is spent by the refund (app/staff_auth.py).

No `from __future__ import annotations` here: FastAPI reads the route annotations at run time.
"""

import secrets
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from terminal.app.counter import counter_day, counter_refunds, refund_fen_of, refunded_by_hand
from terminal.app.day_report import day_report
from terminal.app.reprint import reprint_receipt
from terminal.app.staff_auth import SignedIn, StaffAuth
from terminal.errors import (
    ApprovalRequiredError,
    ReceiptNotFoundError,
    RefundRefusedError,
    StaffLockedOutError,
    StaffSignInError,
    TerminalError,
)
from terminal.payment_types import fen_of
from terminal.pipeline.refunds import Staff
from terminal.service.deps import Service
from terminal.store.staff import StaffStore

# Status of the counter's refusals (service/app.py reads these before its own table).
COUNTER_STATUS: tuple[tuple[type[TerminalError], int], ...] = (
    (StaffLockedOutError, 429),
    (StaffSignInError, 401),
    (ApprovalRequiredError, 403),
    (RefundRefusedError, 409),
    (ReceiptNotFoundError, 404),
)


class SignIn(BaseModel):
    """A staff member's ID and password."""

    model_config = ConfigDict(extra="forbid")
    staff_id: str = Field(min_length=1, max_length=32)
    password: str = Field(min_length=1, max_length=256)


class Approve(SignIn):
    """A supervisor's second sign-in approving one operation: which, on which settlement, for how much."""

    msgid: str = Field(min_length=1, max_length=64)
    operation: Literal["refund"] = "refund"
    amount: Decimal = Field(ge=0, le=Decimal("99999999.99"), decimal_places=2)


class RefundRequest(BaseModel):
    """Refund one settlement whole, with the supervisor's approval token and a reason."""

    model_config = ConfigDict(extra="forbid")
    msgid: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=200)
    approval: str = Field(min_length=1, max_length=2048)


class HandRefund(BaseModel):
    """Money owed by hand (refund_manual) handed back at the counter, with the counter's receipt number."""

    model_config = ConfigDict(extra="forbid")
    msgid: str = Field(min_length=1, max_length=64)
    receipt_no: str = Field(min_length=1, max_length=64)


class ReprintRequest(BaseModel):
    """Reprint one settlement's receipt."""

    model_config = ConfigDict(extra="forbid")
    msgid: str = Field(min_length=1, max_length=64)


def office_routes(svc: Service) -> APIRouter:
    """Staff sign-in, refunds, reprints, the day's settlements and the day report."""
    router = APIRouter()
    auth = StaffAuth(StaffStore(svc.terminal.db), svc.terminal.clock)

    def bearer(authorization: Annotated[str | None, Header()] = None) -> str:
        """The bearer token; checked in the route, under the lock (never in a dependency: deps.py)."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise StaffSignInError("a staff member's own sign-in is required")
        return token

    def reader_of(token: str) -> str:
        """Staff, the cashier's token or the technician's: who reads (call under the lock)."""
        for role, expected in (("cashier", svc.cashier_token), ("technician", svc.technician_token)):
            if expected is not None and secrets.compare_digest(token.encode(), expected.encode()):
                return role
        return auth.verify(token).actor

    Token = Annotated[str, Depends(bearer)]
    # The address only, through a dependency: no untokened handler takes the Request (and so its raw body).
    Client = Annotated[str, Depends(_client)]

    @router.post("/api/staff/sign-in")
    @svc.locked
    def sign_in(client: Client, body: SignIn) -> dict[str, Any]:
        """Sign a staff member in: a token for money operations, valid for a while."""
        token, who = auth.sign_in(body.staff_id, body.password, client=client)
        return _signed(token, who)

    @router.post("/api/staff/approve")
    @svc.locked
    def approve(client: Client, token: Token, body: Approve) -> dict[str, Any]:
        """A supervisor's second sign-in approving one operation the signed-in cashier asks for."""
        cashier = auth.verify(token)
        fen = refund_fen_of(svc.terminal, body.msgid)
        approval, who = auth.approve(
            body.staff_id, body.password, cashier, body.operation, body.msgid, fen, client=client,
            shown_fen=fen_of(body.amount),
        )  # fmt: skip
        return _signed(approval, who)

    @router.get("/api/staff/me")
    @svc.locked
    def me(token: Token) -> dict[str, Any]:
        """Who is signed in."""
        who = auth.verify(token)
        return {"staff_id": who.staff_id, "name": who.name, "role": who.role, "expires_at": who.expires_at}

    @router.post("/api/counter/refund")
    @svc.locked
    def refund(token: Token, body: RefundRequest) -> dict[str, Any]:
        """Refund a whole settlement: insurance reversal, then the payment refund (two people)."""
        who = auth.verify(token)
        fen = refund_fen_of(svc.terminal, body.msgid)
        approval = auth.use_approval(body.approval, who, "refund", body.msgid, fen)
        ended = counter_refunds(svc.terminal).refund(
            body.msgid, Staff(who.staff_id, who.role), Staff(approval.staff_id, approval.role), body.reason
        )
        return {
            "msgid": ended.msgid, "state": ended.state, "insurance": ended.reversal,
            "out_refund_no": ended.out_refund_no, "fen": ended.fen,
            "retrying": ended.state == "refund_due", "by": who.actor, "approved_by": approval.actor,
        }  # fmt: skip

    @router.post("/api/counter/refunded-by-hand")
    @svc.locked
    def by_hand(token: Token, body: HandRefund) -> dict[str, Any]:
        """A signed-in supervisor records handing back money the gateway would not refund (audited)."""
        who = auth.verify(token)
        ended = refunded_by_hand(svc.terminal, body.msgid, body.receipt_no, who.staff_id)
        return {"msgid": ended.msgid, "state": ended.state, "fen": ended.fen, "by": who.actor,
                "receipt_no": body.receipt_no.strip()}  # fmt: skip

    @router.post("/api/counter/reprint")
    def reprint(token: Token, body: ReprintRequest) -> dict[str, Any]:
        """Reprint a receipt marked 补打; the audit names who reprinted it."""
        with svc.hold("reprint"):
            who = auth.verify(token)
            return reprint_receipt(svc.terminal, svc.receipts, body.msgid, who.actor)

    @router.get("/api/counter/settlements")
    def settlements(
        token: Token, day: Annotated[date | None, Query(alias="date", description="YYYY-MM-DD")] = None
    ) -> dict[str, Any]:
        """The day's settlements (default today) with their payment state, newest first."""
        term = svc.terminal
        with svc.hold("settlements"):
            reader_of(token)
            when = day or term.clock.now().date()
            return {"date": when.isoformat(), "settlements": counter_day(term, when)}

    @router.get("/api/report/day")
    def report(
        token: Token, day: Annotated[date | None, Query(alias="date", description="YYYY-MM-DD")] = None
    ) -> dict[str, Any]:
        """The daily reconciliation (对账): insurance per fund vs 3201, 3202 lines, payments vs the bill."""
        if day is None:
            raise HTTPException(status_code=422, detail="date=YYYY-MM-DD is required")
        with svc.hold("day report"):
            reader_of(token)
        return day_report(svc.terminal, day)

    return router


def _client(request: Request) -> str:
    """The address a sign-in comes from: wrong passwords pause that client, not everyone's sign-in."""
    return request.client.host if request.client is not None else "unknown"


def _signed(token: str, who: SignedIn) -> dict[str, Any]:
    return {
        "token": token, "staff_id": who.staff_id, "name": who.name, "role": who.role,
        "kind": who.kind, "expires_at": who.expires_at.isoformat(), "msgid": who.msgid,
        "operation": who.operation, "fen": who.fen,
    }  # fmt: skip
