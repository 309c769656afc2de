"""The PaymentGateway port over HTTP+JSON (docs/payment.md): signed calls, verified answers, errors split.

The split is what the checkout's safety rests on: PaymentUnavailableError only when the gateway cannot
have processed the call (no connection, or its own signed word that it did nothing);
PaymentUnknownOutcomeError whenever it may have (timeouts after sending, 5xx, SYSTEMERROR, a dropped or
unverifiable answer), after which the caller queries by out_trade_no before anything else.
"""

from __future__ import annotations

import json
import logging
import re
import socket
from datetime import date
from typing import Any

import httpx
from pydantic import ValidationError

from terminal.errors import (
    PaymentDeclinedError,
    PaymentUnavailableError,
    PaymentUnknownOutcomeError,
    RefundError,
)
from terminal.payment import wire
from terminal.payment.codes import mask_auth_code, route_auth_code
from terminal.payment.signing import (
    MCH_ID,
    SignatureProblem,
    answer_string,
    check,
    new_nonce,
    read_signed,
    request_string,
    signature_headers,
)
from terminal.payment_types import GatewayBillLine, PayOrder, PayOutcome, RefundOutcome
from terminal.ports import Clock

log = logging.getLogger(__name__)

# The connect phase gets its own, shorter bound: a gateway that cannot be reached should be known fast.
CONNECT_TIMEOUT_S = 3.0
_NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class _Answer:
    """A verified answer: its HTTP status and envelope."""

    def __init__(self, status: int, envelope: wire.Envelope) -> None:
        self.status = status
        self.code = envelope.code
        self.message = envelope.message
        self.data = envelope.data or {}

    def describe(self) -> str:
        return f"{self.code} (HTTP {self.status}): {self.message}"


class HttpPaymentGateway:
    """The aggregated-payment gateway's HTTP adapter; pass `transport` to inject faults in tests."""

    def __init__(
        self,
        base_url: str,
        merchant_id: str,
        key: bytes,
        clock: Clock,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._merchant_id = merchant_id
        self._key = key
        self._clock = clock
        if transport is None:
            # Without NODELAY, Nagle plus the server's delayed ACK adds ~40 ms to every call.
            transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, CONNECT_TIMEOUT_S))
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport)

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def create_qr(self, order: PayOrder, expires_s: int) -> PayOutcome:
        """主扫: create (or, for the same out_trade_no and amount, return) an order with its code_url."""
        _check_order(order)
        if not 10 <= expires_s <= 7200:
            raise ValueError(f"expires_s {expires_s} is outside 10..7200")
        body = {**_order_body(order), "expires_s": expires_s}
        answer = self._call("POST", wire.QR_PATH, body, f"QR order {order.out_trade_no}")
        return self._charged(answer, order, "QR order")

    def micropay(self, order: PayOrder, auth_code: str) -> PayOutcome:
        """被扫: charge a payment code (refused before any call unless it routes to a wallet)."""
        _check_order(order)
        channel = route_auth_code(auth_code)
        body = {**_order_body(order), "auth_code": auth_code.strip(), "channel": channel.value}
        what = f"micropay {order.out_trade_no} ({channel.value} {mask_auth_code(auth_code)})"
        answer = self._call("POST", wire.MICROPAY_PATH, body, what)
        return self._charged(answer, order, "micropay")

    def query(self, out_trade_no: str) -> PayOutcome:
        """The order's state now; NOTFOUND when the gateway never created it."""
        _check_id(out_trade_no, wire.OUT_TRADE_NO_PATTERN)
        answer = self._call("GET", wire.order_path(out_trade_no), None, f"query {out_trade_no}")
        if answer.code == wire.ORDER_NOT_EXIST:
            return wire.not_found(out_trade_no)
        return self._order(answer, out_trade_no, "query")

    def cancel(self, out_trade_no: str) -> PayOutcome:
        """Close an unpaid order or reverse (撤销) a paid one; CLOSED or REVOKED, idempotent."""
        _check_id(out_trade_no, wire.OUT_TRADE_NO_PATTERN)
        answer = self._call("POST", wire.cancel_path(out_trade_no), {}, f"cancel {out_trade_no}")
        return self._order(answer, out_trade_no, "cancel")

    def refund(self, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int) -> RefundOutcome:
        """Refund part or all of a paid order, idempotent on out_refund_no; RefundError when refused."""
        _check_id(out_trade_no, wire.OUT_TRADE_NO_PATTERN)
        _check_id(out_refund_no, wire.OUT_REFUND_NO_PATTERN)
        if not (_is_fen(refund_fen) and _is_fen(total_fen) and refund_fen <= total_fen):
            raise ValueError(f"refund of {refund_fen!r} fen from {total_fen!r} fen is not a valid amount")
        body = {
            "out_trade_no": out_trade_no,
            "out_refund_no": out_refund_no,
            "refund_fen": refund_fen,
            "total_fen": total_fen,
        }
        answer = self._call("POST", wire.REFUNDS_PATH, body, f"refund {out_refund_no}")
        if answer.code != wire.OK:
            raise RefundError(f"refund {out_refund_no} of {out_trade_no} refused: {answer.describe()}")
        refund = self._refund(answer, out_refund_no, "refund")
        if refund.out_trade_no != out_trade_no or refund.refund_fen != refund_fen:
            raise PaymentUnknownOutcomeError(
                f"refund {out_refund_no}: the gateway answered for {refund.out_trade_no}, "
                f"{refund.refund_fen} fen: query it"
            )
        return refund

    def refund_query(self, out_refund_no: str) -> RefundOutcome:
        """A refund's state now; state NOTFOUND when the gateway never recorded it."""
        _check_id(out_refund_no, wire.OUT_REFUND_NO_PATTERN)
        answer = self._call("GET", wire.refund_path(out_refund_no), None, f"refund query {out_refund_no}")
        if answer.code == wire.REFUND_NOT_EXIST:
            return wire.not_found_refund(out_refund_no)
        if answer.code != wire.OK:
            raise PaymentUnknownOutcomeError(f"refund query {out_refund_no}: {answer.describe()}")
        return self._refund(answer, out_refund_no, "refund query")

    def bill(self, day: date) -> list[GatewayBillLine]:
        """The gateway's PAY and REFUND lines for one day (Asia/Shanghai)."""
        answer = self._call("GET", wire.bill_path(day), None, f"bill {day.isoformat()}")
        if answer.code != wire.OK:
            raise PaymentUnavailableError(f"bill {day.isoformat()}: {answer.describe()}")
        try:
            bill = wire.BillIn.model_validate(answer.data)
        except ValidationError as exc:
            raise PaymentUnavailableError(f"bill {day.isoformat()} is garbled: {_first(exc)}") from exc
        if bill.bill_date != day:
            raise PaymentUnavailableError(f"asked for the bill of {day}, the gateway sent {bill.bill_date}")
        return [line.line() for line in bill.lines]

    # -- answers -----------------------------------------------------------------------------------

    def _charged(self, answer: _Answer, order: PayOrder, what: str) -> PayOutcome:
        """The order a charging call answered with; declined, or unknown when it is another order."""
        if answer.code == wire.OUT_TRADE_NO_USED:
            raise PaymentUnknownOutcomeError(
                f"{what} {order.out_trade_no}: the out_trade_no is taken by another order "
                f"({answer.message}); query it"
            )
        if answer.code != wire.OK:
            raise PaymentDeclinedError(
                f"{what} {order.out_trade_no} declined: {answer.describe()}", answer.code
            )
        outcome = self._order(answer, order.out_trade_no, what)
        if outcome.total_fen != order.total_fen:
            raise PaymentUnknownOutcomeError(
                f"{what} {order.out_trade_no}: the gateway answered {outcome.total_fen} fen for "
                f"{order.total_fen}: query it"
            )
        return outcome

    def _order(self, answer: _Answer, out_trade_no: str, what: str) -> PayOutcome:
        if answer.code != wire.OK:
            raise PaymentUnknownOutcomeError(f"{what} {out_trade_no}: {answer.describe()}")
        try:
            outcome = wire.OrderIn.model_validate(answer.data).outcome()
        except ValidationError as exc:
            raise PaymentUnknownOutcomeError(f"{what} {out_trade_no}: garbled order ({_first(exc)})") from exc
        if outcome.out_trade_no != out_trade_no:
            raise PaymentUnknownOutcomeError(
                f"{what} {out_trade_no}: the gateway answered about {outcome.out_trade_no}"
            )
        log.info("payment %s %s: %s", what, out_trade_no, outcome.state.value)
        return outcome

    def _refund(self, answer: _Answer, out_refund_no: str, what: str) -> RefundOutcome:
        try:
            refund = wire.RefundIn.model_validate(answer.data).outcome()
        except ValidationError as exc:
            raise PaymentUnknownOutcomeError(f"{what} {out_refund_no}: garbled ({_first(exc)})") from exc
        if refund.out_refund_no != out_refund_no:
            raise PaymentUnknownOutcomeError(f"{what} {out_refund_no}: answered about {refund.out_refund_no}")
        log.info("payment %s %s: %s", what, out_refund_no, refund.state)
        return refund

    # -- the wire ----------------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict[str, Any] | None, what: str) -> _Answer:
        """One signed call; its answer verified. Raises the unavailable/unknown split on transport trouble."""
        content = (
            b"" if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        )
        request = self._http.build_request(method, path, content=content or None)
        signed_path = request.url.raw_path.decode("ascii")
        timestamp = int(self._clock.now().timestamp())
        nonce = new_nonce()
        canonical = request_string(method, signed_path, timestamp, nonce, content)
        request.headers[MCH_ID] = self._merchant_id
        request.headers.update(signature_headers(self._key, canonical, timestamp, nonce))
        if content:
            request.headers["Content-Type"] = "application/json"
        try:
            reply = self._http.send(request)
        except _NOTHING_SENT as exc:
            raise PaymentUnavailableError(f"{what}: the gateway cannot be reached ({_name(exc)})") from exc
        except httpx.HTTPError as exc:
            # Sent (or partly sent) and no answer: the gateway may have processed it.
            raise PaymentUnknownOutcomeError(f"{what}: no answer from the gateway ({_name(exc)})") from exc
        status = reply.status_code
        try:
            signed = read_signed(reply.headers, self._clock.now().timestamp())
            check(
                self._key,
                answer_string(
                    status, method, signed_path, nonce, signed.timestamp, signed.nonce, reply.content
                ),
                signed.signature,
            )
        except SignatureProblem as exc:
            hint = "; check [payment] key_file" if status == 401 else ""
            raise PaymentUnknownOutcomeError(
                f"{what}: the gateway's answer (HTTP {status}) is refused: {exc}{hint}"
            ) from exc
        try:
            envelope = wire.Envelope.model_validate_json(reply.content)
        except ValidationError as exc:
            raise PaymentUnknownOutcomeError(f"{what}: garbled answer (HTTP {status})") from exc
        answer = _Answer(status, envelope)
        if status == 503 and answer.code in wire.UNAVAILABLE_CODES:
            raise PaymentUnavailableError(f"{what}: the gateway processed nothing: {answer.describe()}")
        if status >= 500 or answer.code in wire.UNKNOWN_CODES:
            raise PaymentUnknownOutcomeError(f"{what}: {answer.describe()}")
        if status == 401:
            raise PaymentUnavailableError(
                f"{what}: the gateway refused this terminal's signature ({answer.describe()}); "
                "check [payment] merchant_id and key_file"
            )
        return answer


def _order_body(order: PayOrder) -> dict[str, Any]:
    return {"out_trade_no": order.out_trade_no, "total_fen": order.total_fen, "subject": order.subject}


def _check_order(order: PayOrder) -> None:
    _check_id(order.out_trade_no, wire.OUT_TRADE_NO_PATTERN)
    if not (_is_fen(order.total_fen) and order.total_fen > 0):
        raise ValueError(f"an order's total_fen must be a positive integer, not {order.total_fen!r}")
    if not 1 <= len(order.subject) <= 128:
        raise ValueError("an order's subject must be 1..128 characters")


def _check_id(value: str, pattern: str) -> None:
    if not re.fullmatch(pattern, value):
        raise ValueError(f"{value!r} is not a valid gateway number ({pattern})")


def _is_fen(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _name(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _first(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
