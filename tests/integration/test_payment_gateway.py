"""Contract tests: the payment adapter against the reference gateway (a subprocess), every endpoint."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from terminal.errors import (
    PaymentCodeInvalidError,
    PaymentDeclinedError,
    PaymentUnknownOutcomeError,
    RefundError,
)
from terminal.payment.http import HttpPaymentGateway
from terminal.payment_types import PayChannel, PayOrder, PayState
from tests.integration.payment_kit import WECHAT_CODE, PaymentKit, running_gateway

ALIPAY_CODE = "284567890123456789"
UNIONPAY_CODE = "6234567890123456789"
_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PaymentKit]:
    with running_gateway(tmp_path_factory.mktemp("gateway")) as running:
        yield running


@pytest.fixture
def gateway(kit: PaymentKit) -> Iterator[HttpPaymentGateway]:
    kit.reset()
    adapter = kit.adapter()
    yield adapter
    adapter.close()


def order(fen: int = 9136) -> PayOrder:
    """A fresh order (out_trade_no unique in this module's gateway)."""
    return PayOrder(f"CT{next(_numbers):06d}", fen, "湘潭示例医院 门诊缴费")


def test_qr_order_is_created_once_and_paid_by_the_patients_phone(
    kit: PaymentKit, gateway: HttpPaymentGateway
) -> None:
    qr = order()
    created = gateway.create_qr(qr, 120)
    assert created.state is PayState.NOTPAY and created.total_fen == 9136
    assert created.code_url and created.expires_at is not None
    assert gateway.create_qr(qr, 120).code_url == created.code_url  # same out_trade_no + amount: same order

    assert kit.pay_qr(created.code_url, channel="alipay").status_code == 200
    paid = gateway.query(qr.out_trade_no)
    assert paid.state is PayState.SUCCESS and paid.channel is PayChannel.ALIPAY
    assert paid.transaction_id and paid.paid_at is not None
    assert kit.pay_qr(created.code_url).json()["code"] == "ORDERPAID"  # a second scan charges nothing
    assert kit.orders()[qr.out_trade_no]["total_fen"] == 9136


def test_the_same_out_trade_no_with_another_amount_is_refused(
    kit: PaymentKit, gateway: HttpPaymentGateway
) -> None:
    qr = order(100)
    gateway.create_qr(qr, 120)
    with pytest.raises(PaymentUnknownOutcomeError, match="taken by another order"):
        gateway.create_qr(PayOrder(qr.out_trade_no, 200, qr.subject), 120)
    with pytest.raises(PaymentUnknownOutcomeError, match="taken by another order"):
        gateway.micropay(qr, WECHAT_CODE)  # the same number as another kind of order
    assert kit.orders()[qr.out_trade_no]["total_fen"] == 100


def test_an_expired_qr_order_closes_and_cannot_be_paid(kit: PaymentKit, gateway: HttpPaymentGateway) -> None:
    qr = order()
    created = gateway.create_qr(qr, 60)
    assert created.code_url
    kit.expire(qr.out_trade_no)
    assert gateway.query(qr.out_trade_no).state is PayState.CLOSED
    assert kit.pay_qr(created.code_url).json()["code"] == "ORDERCLOSED"


@pytest.mark.parametrize(
    ("code", "channel"),
    [
        (WECHAT_CODE, PayChannel.WECHAT),
        (ALIPAY_CODE, PayChannel.ALIPAY),
        (UNIONPAY_CODE, PayChannel.UNIONPAY),
    ],
)
def test_micropay_charges_once_and_a_retry_returns_the_same_payment(
    kit: PaymentKit, gateway: HttpPaymentGateway, code: str, channel: PayChannel
) -> None:
    pay = order()
    first = gateway.micropay(pay, code)
    assert first.state is PayState.SUCCESS and first.channel is channel and first.transaction_id
    again = gateway.micropay(pay, code)
    assert again.transaction_id == first.transaction_id
    assert gateway.query(pay.out_trade_no).transaction_id == first.transaction_id
    assert len([o for o in kit.orders().values() if o["out_trade_no"] == pay.out_trade_no]) == 1


def test_an_unknown_payment_code_is_refused_before_the_gateway_is_called(
    kit: PaymentKit, gateway: HttpPaymentGateway
) -> None:
    pay = order()
    with pytest.raises(PaymentCodeInvalidError):
        gateway.micropay(pay, "994567890123456789")
    assert pay.out_trade_no not in kit.orders()


def test_query_of_an_order_never_created_is_notfound(gateway: HttpPaymentGateway) -> None:
    assert gateway.query("NEVER-CREATED-1").state is PayState.NOTFOUND


def test_cancel_closes_an_unpaid_order_and_reverses_a_paid_one(
    kit: PaymentKit, gateway: HttpPaymentGateway
) -> None:
    unpaid, paid = order(), order(500)
    gateway.create_qr(unpaid, 120)
    assert gateway.cancel(unpaid.out_trade_no).state is PayState.CLOSED
    assert gateway.cancel(unpaid.out_trade_no).state is PayState.CLOSED  # idempotent
    charged = gateway.micropay(paid, WECHAT_CODE)
    assert gateway.cancel(paid.out_trade_no).state is PayState.REVOKED
    assert gateway.query(paid.out_trade_no).state is PayState.REVOKED
    assert charged.paid_at is not None
    lines = [line for line in gateway.bill(charged.paid_at.date()) if line.out_trade_no == paid.out_trade_no]
    assert sorted((line.kind, line.fen) for line in lines) == [("PAY", 500), ("REFUND", 500)]


def test_a_cancelled_number_never_charges_later(kit: PaymentKit, gateway: HttpPaymentGateway) -> None:
    # The terminal gave up on a charge that never arrived: when it arrives late, it must not succeed.
    late = order()
    assert gateway.cancel(late.out_trade_no).state is PayState.CLOSED
    with pytest.raises(PaymentDeclinedError) as declined:
        gateway.micropay(late, WECHAT_CODE)
    assert declined.value.err_code == "ORDERCLOSED"
    assert gateway.query(late.out_trade_no).state is PayState.NOTFOUND


def test_refunds_are_idempotent_on_out_refund_no_and_bounded_by_the_order(
    kit: PaymentKit, gateway: HttpPaymentGateway
) -> None:
    pay = order(9136)
    gateway.micropay(pay, ALIPAY_CODE)
    first = gateway.refund(pay.out_trade_no, f"{pay.out_trade_no}-R1", 1000, 9136)
    assert first.state == "SUCCESS" and first.refund_id
    assert gateway.refund(pay.out_trade_no, f"{pay.out_trade_no}-R1", 1000, 9136).refund_id == first.refund_id
    assert gateway.refund_query(f"{pay.out_trade_no}-R1") == first
    assert gateway.query(pay.out_trade_no).state is PayState.REFUND
    with pytest.raises(RefundError, match="REFUND_AMOUNT_INVALID"):
        gateway.refund(pay.out_trade_no, f"{pay.out_trade_no}-R2", 8137, 9136)
    assert gateway.refund(pay.out_trade_no, f"{pay.out_trade_no}-R2", 8136, 9136).state == "SUCCESS"
    assert kit.orders()[pay.out_trade_no]["refunded_fen"] == 9136
    assert gateway.refund_query("NEVER-REFUNDED").state == "NOTFOUND"


def test_a_refund_of_an_unpaid_order_is_refused(gateway: HttpPaymentGateway) -> None:
    qr = order()
    gateway.create_qr(qr, 120)
    with pytest.raises(RefundError, match="ORDER_NOT_PAID"):
        gateway.refund(qr.out_trade_no, f"{qr.out_trade_no}-R1", 100, qr.total_fen)


def test_the_days_bill_lists_payments_and_refunds(kit: PaymentKit, gateway: HttpPaymentGateway) -> None:
    pay, qr = order(2000), order(300)
    charged = gateway.micropay(pay, WECHAT_CODE)
    created = gateway.create_qr(qr, 120)
    assert created.code_url
    kit.pay_qr(created.code_url)
    refund = gateway.refund(pay.out_trade_no, f"{pay.out_trade_no}-R1", 500, 2000)
    assert charged.paid_at is not None
    ours = {pay.out_trade_no, qr.out_trade_no}
    lines = [line for line in gateway.bill(charged.paid_at.date()) if line.out_trade_no in ours]
    paid_qr = gateway.query(qr.out_trade_no)
    if paid_qr.paid_at is not None and paid_qr.paid_at.date() != charged.paid_at.date():
        pytest.skip("the test ran across midnight (Asia/Shanghai)")  # the lines are then on two bills
    assert sorted((line.kind, line.out_trade_no, line.fen, line.transaction_id) for line in lines) == sorted(
        [
            ("PAY", pay.out_trade_no, 2000, charged.transaction_id),
            ("PAY", qr.out_trade_no, 300, paid_qr.transaction_id),
            ("REFUND", pay.out_trade_no, 500, refund.refund_id),
        ]
    )
    refund_line = next(line for line in lines if line.kind == "REFUND")
    assert refund_line.out_refund_no == f"{pay.out_trade_no}-R1" and refund_line.channel is PayChannel.WECHAT


def test_an_order_lives_in_the_gateways_own_database(kit: PaymentKit, gateway: HttpPaymentGateway) -> None:
    import sqlite3

    pay = order(4321)
    gateway.micropay(pay, WECHAT_CODE)
    with sqlite3.connect(kit.db) as db:
        row = db.execute(
            "SELECT state, total_fen FROM orders WHERE out_trade_no = ?", (pay.out_trade_no,)
        ).fetchone()
    assert row == ("SUCCESS", 4321)


def test_a_fresh_folder_gets_a_private_key_and_a_database(tmp_path: Path) -> None:
    # What `make demo` will rely on: nothing to prepare before the first start.
    with running_gateway(tmp_path) as fresh:
        assert fresh.key_file.stat().st_mode & 0o777 == 0o600
        adapter = fresh.adapter()
        assert adapter.micropay(order(1), WECHAT_CODE).state is PayState.SUCCESS
        adapter.close()
    assert (tmp_path / "gateway.sqlite").is_file()
