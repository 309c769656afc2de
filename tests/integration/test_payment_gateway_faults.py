"""Contract tests under the reference gateway's fault switches: each one mapped to the right outcome."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from devkit.serving import refusing_port
from terminal.clock import SystemClock
from terminal.errors import (
    PaymentDeclinedError,
    PaymentUnavailableError,
    PaymentUnknownOutcomeError,
    RefundError,
)
from terminal.payment.http import HttpPaymentGateway
from terminal.payment_types import PayOrder, PayState
from tests.integration.payment_kit import PaymentKit, running_gateway

CODE = "134567890123456789"
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
    kit.reset()


def order(fen: int = 9136) -> PayOrder:
    """A fresh order."""
    return PayOrder(f"FT{next(_numbers):06d}", fen, "湘潭示例医院 门诊缴费")


def test_decline_is_a_failure_with_the_gateways_reason(kit: PaymentKit, gateway: HttpPaymentGateway) -> None:
    kit.faults(decline="NOTENOUGH")
    pay = order()
    with pytest.raises(PaymentDeclinedError) as declined:
        gateway.micropay(pay, CODE)
    assert declined.value.err_code == "NOTENOUGH"
    queried = gateway.query(pay.out_trade_no)
    assert queried.state is PayState.PAYERROR and queried.err_code == "NOTENOUGH"
    kit.faults(decline=None)
    with pytest.raises(PaymentDeclinedError):  # a declined number stays declined: pay under a new one
        gateway.micropay(pay, CODE)


def test_a_slow_gateway_gives_an_unknown_outcome_that_the_query_resolves(
    kit: PaymentKit, gateway: HttpPaymentGateway
) -> None:
    # The gateway holds the call until the test releases it: the client's timeout always fires first.
    kit.faults(hold=True)
    impatient = kit.adapter(timeout_s=0.5)
    pay = order()
    with pytest.raises(PaymentUnknownOutcomeError, match="no answer"):
        impatient.micropay(pay, CODE)
    kit.wait_held(1)
    assert kit.release() == 1
    assert gateway.query(pay.out_trade_no).state is PayState.SUCCESS  # it charged: never assume failure
    impatient.close()


def test_a_lost_answer_after_charging_is_found_by_query_and_not_charged_twice(
    kit: PaymentKit, gateway: HttpPaymentGateway
) -> None:
    kit.faults(lost=1)
    pay = order()
    with pytest.raises(PaymentUnknownOutcomeError, match="no answer"):
        gateway.micropay(pay, CODE)
    found = gateway.query(pay.out_trade_no)
    assert found.state is PayState.SUCCESS and found.transaction_id
    assert gateway.micropay(pay, CODE).transaction_id == found.transaction_id
    assert kit.orders()[pay.out_trade_no]["state"] == "SUCCESS"


def test_a_lost_answer_to_a_refund_is_found_by_refund_query(
    kit: PaymentKit, gateway: HttpPaymentGateway
) -> None:
    pay = order(800)
    gateway.micropay(pay, CODE)
    kit.faults(lost=1)
    with pytest.raises(PaymentUnknownOutcomeError):
        gateway.refund(pay.out_trade_no, f"{pay.out_trade_no}-R1", 800, 800)
    assert gateway.refund_query(f"{pay.out_trade_no}-R1").state == "SUCCESS"


@pytest.mark.parametrize(
    ("result", "state"), [("SUCCESS", PayState.SUCCESS), ("USERCANCEL", PayState.PAYERROR)]
)
def test_userpaying_resolves_after_n_queries(
    kit: PaymentKit, gateway: HttpPaymentGateway, result: str, state: PayState
) -> None:
    kit.faults(userpaying=3, userpaying_result=result)
    pay = order()
    assert gateway.micropay(pay, CODE).state is PayState.USERPAYING
    assert [gateway.query(pay.out_trade_no).state for _ in range(3)] == [
        PayState.USERPAYING, PayState.USERPAYING, state,
    ]  # fmt: skip
    assert gateway.query(pay.out_trade_no).state is state


def test_cancel_while_userpaying_closes_the_order_and_no_later_poll_charges(
    kit: PaymentKit, gateway: HttpPaymentGateway
) -> None:
    kit.faults(userpaying=2)
    pay = order()
    assert gateway.micropay(pay, CODE).state is PayState.USERPAYING
    assert gateway.cancel(pay.out_trade_no).state is PayState.CLOSED
    assert [gateway.query(pay.out_trade_no).state for _ in range(3)] == [PayState.CLOSED] * 3


def test_a_failed_refund_is_recorded_and_a_retry_succeeds(
    kit: PaymentKit, gateway: HttpPaymentGateway
) -> None:
    pay = order(1500)
    gateway.micropay(pay, CODE)
    kit.faults(refund_fail=1)
    refund_no = f"{pay.out_trade_no}-R1"
    with pytest.raises(RefundError, match="REFUND_FAIL"):
        gateway.refund(pay.out_trade_no, refund_no, 1500, 1500)
    assert gateway.refund_query(refund_no).state == "FAIL"
    assert gateway.query(pay.out_trade_no).state is PayState.SUCCESS  # nothing refunded yet
    assert gateway.refund(pay.out_trade_no, refund_no, 1500, 1500).state == "SUCCESS"
    assert kit.orders()[pay.out_trade_no]["refunded_fen"] == 1500


def test_a_gateway_that_says_it_is_down_processed_nothing(
    kit: PaymentKit, gateway: HttpPaymentGateway
) -> None:
    kit.faults(down=True)
    pay = order()
    with pytest.raises(PaymentUnavailableError, match="processed nothing"):
        gateway.micropay(pay, CODE)
    assert pay.out_trade_no not in kit.orders()


def test_no_gateway_at_all_is_unavailable() -> None:
    with refusing_port() as port:
        adapter = HttpPaymentGateway(f"http://127.0.0.1:{port}", "M", b"k" * 32, SystemClock())
        with pytest.raises(PaymentUnavailableError, match="cannot be reached"):
            adapter.micropay(order(), CODE)
        adapter.close()


def test_a_mis_signed_answer_is_refused_as_unknown(kit: PaymentKit, gateway: HttpPaymentGateway) -> None:
    kit.faults(bad_signature=True)
    pay = order()
    with pytest.raises(PaymentUnknownOutcomeError, match="signature does not match"):
        gateway.micropay(pay, CODE)
    assert kit.orders()[pay.out_trade_no]["state"] == "SUCCESS"  # it had charged: hence unknown, not failed


def test_the_gateway_refuses_a_wrong_key_and_a_wrong_merchant(
    kit: PaymentKit, gateway: HttpPaymentGateway
) -> None:
    pay = order()
    wrong_key = kit.adapter(key=b"x" * 64)
    with pytest.raises(PaymentUnknownOutcomeError, match="check \\[payment\\] key_file"):
        wrong_key.micropay(pay, CODE)  # its answer cannot be verified under the wrong key either
    wrong_key.close()
    stranger = kit.adapter(merchant_id="SOMEONE-ELSE")
    with pytest.raises(PaymentUnavailableError, match="refused this terminal's signature"):
        stranger.micropay(pay, CODE)
    stranger.close()
    assert pay.out_trade_no not in kit.orders()


class _LateClock:
    """The terminal's clock ten minutes behind the gateway's."""

    def now(self) -> datetime:
        return SystemClock().now() - timedelta(minutes=10)


def test_a_stale_request_is_refused_and_charges_nothing(kit: PaymentKit, gateway: HttpPaymentGateway) -> None:
    late = kit.adapter(clock=_LateClock())
    pay = order()
    with pytest.raises(PaymentUnknownOutcomeError, match="stale timestamp"):
        late.micropay(pay, CODE)  # the gateway's refusal carries its (for this terminal, stale) time
    late.close()
    assert pay.out_trade_no not in kit.orders()


def test_fault_switches_can_be_set_at_start(tmp_path: Path) -> None:
    with running_gateway(
        tmp_path, "--decline", "AUTHCODEEXPIRE", "--userpaying", "2", "--refund-fail", "1"
    ) as k:
        faults = k.control.get("/control/faults").json()
        assert (faults["decline"], faults["userpaying"], faults["refund_fail"]) == ("AUTHCODEEXPIRE", 2, 1)
        adapter = k.adapter()
        with pytest.raises(PaymentDeclinedError) as declined:
            adapter.micropay(order(), CODE)
        assert declined.value.err_code == "AUTHCODEEXPIRE"
        adapter.close()
