"""The reference gateway's HTTP face: the signed /v1 API (docs/payment.md §4) and the /control endpoints."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from devkit.payment.faults import Faults
from devkit.payment.store import Answer, GatewayStore
from terminal.payment.signing import (
    MAX_SKEW_S,
    MCH_ID,
    NONCE,
    SignatureProblem,
    answer_string,
    check,
    new_nonce,
    read_signed,
    request_string,
    signature_headers,
)
from terminal.payment.wire import OUT_REFUND_NO_PATTERN, OUT_TRADE_NO_PATTERN

log = logging.getLogger("dev_payment")

_NO = r"([A-Za-z0-9_\-]{1,64})"
HOLD_LIMIT_S = 120.0  # a held call never waits longer than this, so a forgotten hold cannot hang a test run


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QrIn(_In):
    """POST /v1/orders/qr."""

    out_trade_no: Annotated[str, Field(pattern=OUT_TRADE_NO_PATTERN)]
    total_fen: Annotated[StrictInt, Field(ge=1, le=10_000_000_000)]
    subject: Annotated[str, Field(min_length=1, max_length=128)]
    expires_s: Annotated[StrictInt, Field(ge=10, le=7200)]


class MicropayIn(_In):
    """POST /v1/orders/micropay."""

    out_trade_no: Annotated[str, Field(pattern=OUT_TRADE_NO_PATTERN)]
    total_fen: Annotated[StrictInt, Field(ge=1, le=10_000_000_000)]
    subject: Annotated[str, Field(min_length=1, max_length=128)]
    auth_code: Annotated[str, Field(min_length=1, max_length=32)]
    channel: str | None = None


class RefundIn(_In):
    """POST /v1/refunds."""

    out_trade_no: Annotated[str, Field(pattern=OUT_TRADE_NO_PATTERN)]
    out_refund_no: Annotated[str, Field(pattern=OUT_REFUND_NO_PATTERN)]
    refund_fen: Annotated[StrictInt, Field(ge=1)]
    total_fen: Annotated[StrictInt, Field(ge=1)]


@dataclass
class Reply:
    """What one signed call answers; `drop` loses it after the commit (the `lost` fault)."""

    status: int
    code: str
    data: dict[str, Any] | None = None
    message: str = ""
    drop: bool = False


@dataclass
class Gateway:
    """The gateway's state: its store, key, merchant, fault switches and held calls."""

    store: GatewayStore
    key: bytes
    merchant_id: str
    faults: Faults = field(default_factory=Faults)
    changed: threading.Condition = field(default_factory=threading.Condition)
    waiting: int = 0  # calls now held
    unfinished: int = 0  # calls held at some point and not yet answered
    _nonces: dict[str, float] = field(default_factory=dict)

    def set_faults(self, patch: dict[str, Any]) -> Faults:
        """Change some switches (ValidationError for a bad value); clearing `hold` releases held calls."""
        with self.changed:
            self.faults = Faults.model_validate({**self.faults.model_dump(), **patch})
            self.changed.notify_all()
            return self.faults

    def take(self, name: str) -> bool:
        """Use up one of a counted fault (lost, refund_fail); whether it was armed."""
        with self.changed:
            left = int(getattr(self.faults, name))
            if left <= 0:
                return False
            self.faults = self.faults.model_copy(update={name: left - 1})
            return True

    def release(self, wait_s: float) -> int:
        """Clear `hold` and wait (bounded) until every held call has been answered; how many were held."""
        with self.changed:
            held = self.waiting
            self.faults = self.faults.model_copy(update={"hold": False})
            self.changed.notify_all()
            self.changed.wait_for(lambda: self.unfinished == 0, timeout=wait_s)
            return held

    def wait_held(self, count: int, wait_s: float) -> int:
        """Wait (bounded) until `count` calls are held; how many are."""
        with self.changed:
            self.changed.wait_for(lambda: self.waiting >= count, timeout=wait_s)
            return self.waiting

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        """One signed call: verified, faults applied, processed."""
        problem = self._verify(method, path, headers, body)
        if problem is not None:
            return Reply(401, "SIGN_ERROR", message=problem)
        faults = self.faults
        if faults.down:
            return Reply(503, "SERVICE_UNAVAILABLE", message="the gateway is down (fault switch)")
        if faults.slow_s:
            time.sleep(faults.slow_s)
        held = self._hold()
        try:
            reply = self._route(method, path, body)
            if method == "POST" and reply.status == 200 and self.take("lost"):
                reply.drop = True
            return reply
        finally:
            if held:
                with self.changed:
                    self.unfinished -= 1
                    self.changed.notify_all()

    def _hold(self) -> bool:
        with self.changed:
            if not self.faults.hold:
                return False
            self.waiting += 1
            self.unfinished += 1
            self.changed.notify_all()
            self.changed.wait_for(lambda: not self.faults.hold, timeout=HOLD_LIMIT_S)
            self.waiting -= 1
            return True

    def _verify(self, method: str, path: str, headers: dict[str, str], body: bytes) -> str | None:
        if headers.get(MCH_ID.lower()) != self.merchant_id:
            return "unknown merchant"
        now = time.time()
        try:
            signed = read_signed(headers, now)
            check(
                self.key, request_string(method, path, signed.timestamp, signed.nonce, body), signed.signature
            )
        except SignatureProblem as exc:
            return str(exc)
        with self.changed:
            for nonce in [n for n, at in self._nonces.items() if at < now - 2 * MAX_SKEW_S]:
                del self._nonces[nonce]
            if signed.nonce in self._nonces:
                return "nonce used already (a replayed request)"
            self._nonces[signed.nonce] = now
        return None

    def _route(self, method: str, path: str, body: bytes) -> Reply:
        store = self.store
        try:
            if method == "POST" and path == "/v1/orders/qr":
                qr = QrIn.model_validate_json(body)
                return _reply(store.create_qr(qr.out_trade_no, qr.total_fen, qr.subject, qr.expires_s))
            if method == "POST" and path == "/v1/orders/micropay":
                pay = MicropayIn.model_validate_json(body)
                answer = store.micropay(
                    pay.out_trade_no, pay.total_fen, pay.subject, pay.auth_code, self.faults
                )
                return _reply(answer)
            if method == "POST" and path == "/v1/refunds":
                refund = RefundIn.model_validate_json(body)
                fail = self.take("refund_fail")
                return _reply(store.refund(refund.out_trade_no, refund.out_refund_no, refund.refund_fen,
                                           refund.total_fen, fail))  # fmt: skip
        except ValidationError as exc:
            return Reply(400, "PARAM_ERROR", message=str(exc.errors()[0]["msg"]))
        for pattern, verb, action in self._paths():
            match = re.fullmatch(pattern, path)
            if match and method == verb:
                return action(match.group(1))
        return Reply(404, "NOT_FOUND", message=f"no {method} {path}")

    def _paths(self) -> list[tuple[str, str, Callable[[str], Reply]]]:
        return [
            (rf"/v1/orders/{_NO}", "GET", lambda no: _reply(self.store.query(no))),
            (rf"/v1/orders/{_NO}/cancel", "POST", lambda no: _reply(self.store.cancel(no))),
            (rf"/v1/refunds/{_NO}", "GET", lambda no: _reply(self.store.refund_query(no))),
            (r"/v1/bills/(\d{4}-\d{2}-\d{2})", "GET", self._bill),
        ]

    def _bill(self, day: str) -> Reply:
        try:
            return Reply(200, "OK", self.store.bill(date.fromisoformat(day)))
        except ValueError:
            return Reply(400, "PARAM_ERROR", message=f"no such day {day}")

    def signed(self, reply: Reply, method: str, path: str, request_nonce: str) -> Response:
        """The reply as a signed JSON response (or a dropped one)."""
        payload = {"code": reply.code, "message": reply.message, "data": reply.data}
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp, nonce = int(time.time()), new_nonce()
        key = b"not-the-merchant-key-" * 2 if self.faults.bad_signature else self.key
        canonical = answer_string(reply.status, method, path, request_nonce, timestamp, nonce, body)
        headers = signature_headers(key, canonical, timestamp, nonce)
        if reply.drop:
            log.info("dropping the answer to %s %s after the commit (lost)", method, path)
            return DroppedResponse(body, status_code=reply.status, headers=headers)
        return Response(body, status_code=reply.status, headers=headers, media_type="application/json")


class DroppedResponse(Response):
    """Sends the status line and headers, then closes the connection without the body: the answer is lost."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        # Returning with the body unsent makes the server close the connection (ASGI: an incomplete response).


def _reply(answer: Answer) -> Reply:
    code, data = answer
    return Reply(200, code, data, message="" if code == "OK" else code)


def create_app(gateway: Gateway) -> FastAPI:
    """The HTTP face of a Gateway."""
    app = FastAPI(title="medpay reference payment gateway")

    @app.api_route("/v1/{rest:path}", methods=["GET", "POST"])
    async def api(request: Request) -> Response:
        body = await request.body()
        path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
        if request.url.query:
            path += "?" + request.url.query
        headers = {k.lower(): v for k, v in request.headers.items()}
        reply = await run_in_threadpool(gateway.handle, request.method, path, headers, body)
        return gateway.signed(reply, request.method, path, headers.get(NONCE.lower(), ""))

    @app.get("/control/faults")
    def get_faults() -> dict[str, Any]:
        return gateway.faults.model_dump(mode="json")

    @app.post("/control/faults")
    def set_faults(patch: dict[str, Any]) -> JSONResponse:
        try:
            return JSONResponse(gateway.set_faults(patch).model_dump(mode="json"))
        except ValidationError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.post("/control/pay-qr")
    def pay_qr(body: dict[str, Any]) -> JSONResponse:
        # Stands in for the patient's phone: scanning the code_url (or naming the order) and paying.
        code_url = str(body.get("code_url") or "")
        token = code_url.rsplit("/", 1)[-1] if code_url else None
        channel = str(body.get("channel") or "wechat")
        if channel not in ("wechat", "alipay", "unionpay"):
            return JSONResponse({"detail": f"unknown channel {channel}"}, status_code=422)
        code, data = gateway.store.pay_qr(body.get("out_trade_no"), token, channel)
        return JSONResponse({"code": code, "data": data}, status_code=200 if code == "OK" else 409)

    @app.post("/control/expire")
    def expire(body: dict[str, Any]) -> JSONResponse:
        code, data = gateway.store.expire(str(body.get("out_trade_no", "")))
        return JSONResponse({"code": code, "data": data}, status_code=200 if code == "OK" else 404)

    @app.post("/control/release")
    def release() -> dict[str, int]:
        return {"released": gateway.release(wait_s=30.0)}

    @app.post("/control/wait-held")
    def wait_held(body: dict[str, Any]) -> JSONResponse:
        count = int(body.get("count", 1))
        held = gateway.wait_held(count, wait_s=min(float(body.get("timeout_s", 10.0)), 60.0))
        return JSONResponse({"held": held}, status_code=200 if held >= count else 408)

    @app.get("/control/orders")
    def orders() -> list[dict[str, Any]]:
        return gateway.store.orders()

    return app
