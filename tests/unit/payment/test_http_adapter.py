"""The payment adapter over httpx.MockTransport: signing, answer verification and the error split."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from terminal.errors import (
    PaymentCodeInvalidError,
    PaymentDeclinedError,
    PaymentUnavailableError,
    PaymentUnknownOutcomeError,
    RefundError,
)
from terminal.payment.http import HttpPaymentGateway
from terminal.payment.signing import (
    MCH_ID,
    NONCE,
    answer_string,
    check,
    read_signed,
    request_string,
    signature_headers,
)
from terminal.payment_types import PayChannel, PayOrder, PayState
from tests.fakes import FixedClock

KEY = b"m" * 64
CODE = "134567890123456789"
ORDER = PayOrder("SET0001", 9136, "门诊缴费")
PAID = {"out_trade_no": "SET0001", "state": "SUCCESS", "total_fen": 9136, "channel": "wechat",
        "transaction_id": "T1", "paid_at": "2025-06-03T09:30:00+08:00"}  # fmt: skip
Answer = tuple[int, Any]


class FakeGateway:
    """A MockTransport handler that checks each request's signature and signs its answer."""

    def __init__(self, clock: FixedClock, answer: Callable[[httpx.Request], Answer]) -> None:
        self.clock = clock
        self.answer = answer
        self.requests: list[httpx.Request] = []
        self.sign = True
        self.answer_key = KEY
        self.answer_skew_s = 0
        self.answer_nonce: str | None = None  # sign for another request's nonce

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        signed = read_signed(request.headers, self.clock.now().timestamp())
        path = request.url.raw_path.decode()
        check(KEY, request_string(request.method, path, signed.timestamp, signed.nonce, request.content),
              signed.signature)  # fmt: skip
        status, payload = self.answer(request)
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        if not self.sign:
            return httpx.Response(status, content=body)
        timestamp = int(self.clock.now().timestamp()) + self.answer_skew_s
        nonce = self.answer_nonce or request.headers[NONCE]
        canonical = answer_string(status, request.method, path, nonce, timestamp, "ans12345", body)
        return httpx.Response(
            status, content=body, headers=signature_headers(self.answer_key, canonical, timestamp, "ans12345")
        )


def _ok(data: dict[str, Any] | None) -> Answer:
    return 200, {"code": "OK", "message": "", "data": data}


def _rig(answer: Callable[[httpx.Request], Answer]) -> tuple[HttpPaymentGateway, FakeGateway]:
    clock = FixedClock()
    fake = FakeGateway(clock, answer)
    adapter = HttpPaymentGateway(
        "http://gw.test/pay", "MCH1", KEY, clock, transport=httpx.MockTransport(fake)
    )
    return adapter, fake


def test_requests_carry_the_merchant_and_a_signature_over_the_full_path_and_body() -> None:
    adapter, fake = _rig(lambda request: _ok(PAID))
    outcome = adapter.micropay(ORDER, CODE + "\n")
    assert outcome.state is PayState.SUCCESS and outcome.channel is PayChannel.WECHAT
    request = fake.requests[0]
    assert request.url.raw_path == b"/pay/v1/orders/micropay" and request.headers[MCH_ID] == "MCH1"
    sent = {"out_trade_no": "SET0001", "total_fen": 9136, "subject": "门诊缴费", "auth_code": CODE,
            "channel": "wechat"}  # fmt: skip
    assert json.loads(request.content) == sent


def test_an_unknown_payment_code_never_reaches_the_gateway() -> None:
    adapter, fake = _rig(lambda request: _ok(PAID))
    with pytest.raises(PaymentCodeInvalidError):
        adapter.micropay(ORDER, "994567890123456789")
    assert fake.requests == []


def _raising(exc: Exception) -> Callable[[httpx.Request], Answer]:
    def answer(request: httpx.Request) -> Answer:
        raise exc

    return answer


@pytest.mark.parametrize(
    "exc",
    [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow connect"), httpx.PoolTimeout("pool")],
)
def test_nothing_sent_is_unavailable(exc: Exception) -> None:
    adapter, _ = _rig(_raising(exc))
    with pytest.raises(PaymentUnavailableError, match="cannot be reached"):
        adapter.micropay(ORDER, CODE)


@pytest.mark.parametrize(
    "exc",
    [httpx.ReadTimeout("slow"), httpx.WriteTimeout("slow write"), httpx.RemoteProtocolError("dropped"),
     httpx.ReadError("reset")],
)  # fmt: skip
def test_sent_without_an_answer_is_unknown(exc: Exception) -> None:
    adapter, _ = _rig(_raising(exc))
    with pytest.raises(PaymentUnknownOutcomeError, match="no answer"):
        adapter.micropay(ORDER, CODE)


@pytest.mark.parametrize(
    "answer",
    [
        (500, {"code": "SYSTEMERROR", "message": "busy"}),
        (502, {"code": "BAD_GATEWAY", "message": ""}),
        (503, {"code": "OVERLOADED", "message": ""}),  # a 503 without the gateway's "processed nothing"
        (200, {"code": "SYSTEMERROR", "message": "retry"}),
        (200, {"code": "BANKERROR", "message": ""}),
        (200, b"<html>oops</html>"),
        (200, {"code": "OK", "data": {"out_trade_no": "SET0001", "state": "MAYBE", "total_fen": 9136}}),
        (200, {"code": "OK", "data": {**PAID, "total_fen": "9136"}}),  # a string amount is garbled
    ],
)
def test_gateway_trouble_and_garbled_answers_are_unknown(answer: Answer) -> None:
    adapter, _ = _rig(lambda request: answer)
    with pytest.raises(PaymentUnknownOutcomeError):
        adapter.micropay(ORDER, CODE)


def test_a_signed_service_unavailable_is_unavailable() -> None:
    adapter, _ = _rig(lambda request: (503, {"code": "SERVICE_UNAVAILABLE", "message": "maintenance"}))
    with pytest.raises(PaymentUnavailableError, match="processed nothing"):
        adapter.micropay(ORDER, CODE)


def test_a_signed_refusal_of_the_terminals_signature_is_unavailable() -> None:
    adapter, _ = _rig(
        lambda request: (401, {"code": "SIGN_ERROR", "message": "the signature does not match"})
    )
    with pytest.raises(PaymentUnavailableError, match="merchant_id and key_file"):
        adapter.query("SET0001")


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ({"sign": False}, "unsigned"),
        ({"answer_key": b"x" * 64}, "does not match"),
        ({"answer_skew_s": 301}, "stale"),
        ({"answer_skew_s": -301}, "stale"),
        ({"answer_nonce": "otherrequest"}, "does not match"),  # an answer replayed from another request
    ],
)
def test_unverifiable_answers_are_unknown_even_when_they_say_success(
    tamper: dict[str, Any], reason: str
) -> None:
    adapter, fake = _rig(lambda request: _ok(PAID))
    for name, value in tamper.items():
        setattr(fake, name, value)
    with pytest.raises(PaymentUnknownOutcomeError, match=reason):
        adapter.micropay(ORDER, CODE)


def test_a_decline_carries_the_gateways_err_code() -> None:
    adapter, _ = _rig(lambda request: (200, {"code": "NOTENOUGH", "message": "balance"}))
    with pytest.raises(PaymentDeclinedError) as declined:
        adapter.micropay(ORDER, CODE)
    assert declined.value.err_code == "NOTENOUGH"


def test_an_out_trade_no_taken_by_another_order_is_unknown_not_declined() -> None:
    adapter, _ = _rig(lambda request: (409, {"code": "OUT_TRADE_NO_USED", "message": "other amount"}))
    with pytest.raises(PaymentUnknownOutcomeError, match="query it"):
        adapter.create_qr(ORDER, 120)


@pytest.mark.parametrize("data", [{**PAID, "out_trade_no": "OTHER"}, {**PAID, "total_fen": 1}])
def test_an_answer_about_another_order_or_amount_is_unknown(data: dict[str, Any]) -> None:
    adapter, _ = _rig(lambda request: _ok(data))
    with pytest.raises(PaymentUnknownOutcomeError):
        adapter.micropay(ORDER, CODE)


def test_userpaying_is_an_outcome_not_a_failure() -> None:
    adapter, _ = _rig(lambda request: _ok({**PAID, "state": "USERPAYING", "transaction_id": None}))
    assert adapter.micropay(ORDER, CODE).state is PayState.USERPAYING


def test_query_paths_and_notfound() -> None:
    adapter, fake = _rig(lambda request: (200, {"code": "ORDERNOTEXIST", "message": ""}))
    assert adapter.query("SET0001").state is PayState.NOTFOUND
    assert fake.requests[0].method == "GET" and fake.requests[0].url.raw_path == b"/pay/v1/orders/SET0001"


def test_cancel_returns_the_closed_or_revoked_order() -> None:
    adapter, fake = _rig(lambda request: _ok({**PAID, "state": "REVOKED"}))
    assert adapter.cancel("SET0001").state is PayState.REVOKED
    assert fake.requests[0].url.raw_path == b"/pay/v1/orders/SET0001/cancel"


def test_refund_success_failure_and_query() -> None:
    refund = {"out_refund_no": "SET0001-R1", "out_trade_no": "SET0001", "refund_fen": 100, "state": "SUCCESS",
              "refund_id": "R1"}  # fmt: skip
    adapter, fake = _rig(lambda request: _ok(refund))
    assert adapter.refund("SET0001", "SET0001-R1", 100, 9136).refund_id == "R1"
    assert json.loads(fake.requests[0].content)["refund_fen"] == 100
    assert adapter.refund_query("SET0001-R1").state == "SUCCESS"
    failing, _ = _rig(
        lambda request: (200, {"code": "REFUND_FAIL", "message": "", "data": {**refund, "state": "FAIL"}})
    )
    with pytest.raises(RefundError, match="REFUND_FAIL"):
        failing.refund("SET0001", "SET0001-R1", 100, 9136)
    missing, _ = _rig(lambda request: (200, {"code": "REFUNDNOTEXIST", "message": ""}))
    assert missing.refund_query("SET0001-R9").state == "NOTFOUND"


def test_the_days_bill_is_read_line_by_line_and_checked_for_its_date() -> None:
    line = {"kind": "PAY", "out_trade_no": "SET0001", "fen": 9136, "at": "2025-06-03T09:30:00+08:00",
            "channel": "alipay", "transaction_id": "T1", "out_refund_no": None}  # fmt: skip
    adapter, fake = _rig(lambda request: _ok({"bill_date": "2025-06-03", "lines": [line]}))
    [got] = adapter.bill(date(2025, 6, 3))
    assert (got.kind, got.fen, got.channel, got.at.utcoffset()) == (
        "PAY",
        9136,
        PayChannel.ALIPAY,
        timedelta(hours=8),
    )
    assert fake.requests[0].url.raw_path == b"/pay/v1/bills/2025-06-03"
    with pytest.raises(PaymentUnavailableError, match="sent 2025-06-03"):
        adapter.bill(date(2025, 6, 4))


@pytest.mark.parametrize(
    "call",
    [
        lambda a: a.micropay(PayOrder("SET0001", 0, "x"), CODE),
        lambda a: a.micropay(PayOrder("has space", 100, "x"), CODE),
        lambda a: a.micropay(PayOrder("A" * 33, 100, "x"), CODE),
        lambda a: a.create_qr(ORDER, 5),
        lambda a: a.refund("SET0001", "R1", 200, 100),
        lambda a: a.query("../admin"),
    ],
)
def test_malformed_calls_are_refused_before_sending(call: Callable[[HttpPaymentGateway], object]) -> None:
    adapter, fake = _rig(lambda request: _ok(PAID))
    with pytest.raises(ValueError):
        call(adapter)
    assert fake.requests == []
