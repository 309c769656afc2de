"""Lost answers and refusals against the reference gateway (python -m devkit payment, payment_kit.py):
a QR create whose answer was lost, and a centre-refused settlement's refund the gateway refuses."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from terminal.payment.http import HttpPaymentGateway
from terminal.pipeline.payment import PayPolicy
from terminal.pipeline.sync import reverted_accumulators
from terminal.store.outbox import OutboxStore
from tests.integration.payment_kit import WECHAT_CODE, PaymentKit
from tests.integration.saga_kit import Rig, rig


@pytest.fixture
def adapters() -> Iterator[list[HttpPaymentGateway]]:
    made: list[HttpPaymentGateway] = []
    yield made
    for adapter in made:
        adapter.close()  # its connections closed here, not left to the garbage collector


def over(
    tmp_path: Path, kit: PaymentKit, adapters: list[HttpPaymentGateway], policy: PayPolicy | None = None
) -> Rig:
    adapters.append(kit.adapter())
    return rig(tmp_path / "terminal", policy=policy, port=adapters[-1])


def test_a_lost_create_answer_is_created_again_and_the_patient_pays_once(
    tmp_path: Path, kit: PaymentKit, adapters: list[HttpPaymentGateway]
) -> None:
    r = over(tmp_path, kit, adapters)
    record = r.settle()
    kit.faults(lost=1)  # the create commits at the gateway, its answer never arrives
    sent_at = r.side.clock.at
    lost = r.saga.start_qr(record.msgid)
    assert (lost.state, lost.code_url, lost.attempts) == ("charging", "", 1)
    assert lost.expires_at is not None  # the QR's time runs from the send
    assert (
        sent_at < lost.expires_at <= sent_at + timedelta(seconds=r.saga.policy.qr_expires_s + 10)
    )  # the clock steps a second a read
    shown = r.saga.poll(record.msgid)  # the same order again (idempotent on out_trade_no)
    assert shown.code_url and shown.attempts == 2 and shown.expires_at == lost.expires_at
    assert list(kit.orders()) == [shown.out_trade_no]
    assert kit.pay_qr(shown.code_url).status_code == 200
    paid = r.saga.poll(record.msgid)
    assert paid.state == "paid"
    assert kit.orders()[paid.out_trade_no]["state"] == "SUCCESS"


def test_a_create_never_answered_ends_at_its_expiry_and_nothing_is_kept(
    tmp_path: Path, kit: PaymentKit, adapters: list[HttpPaymentGateway]
) -> None:
    r = over(tmp_path, kit, adapters, PayPolicy(create_attempts=3))
    before = r.totals()
    record = r.settle()
    kit.faults(lost=1)
    lost = r.saga.start_qr(record.msgid)
    kit.faults(down=True)  # every later call is refused: no code to show, ever
    for _ in range(4):
        assert r.saga.poll(record.msgid).state == "charging"
    stuck = r.store.get(record.msgid)
    assert stuck is not None and stuck.attempts == 3 and stuck.code_url == ""  # creates bounded
    assert lost.expires_at is not None
    r.side.clock.at = lost.expires_at
    assert r.saga.poll(record.msgid).state == "abandoning"  # the close did not get through either
    kit.faults(down=False)
    [ended] = r.saga.recover()
    assert ended.state == "reversed" and r.totals() == before
    assert kit.orders()[ended.out_trade_no]["state"] in ("CLOSED", "REVOKED")


def test_a_refund_refused_to_the_bound_is_left_for_staff_then_a_retry_does_not_happen(
    tmp_path: Path, kit: PaymentKit, adapters: list[HttpPaymentGateway]
) -> None:
    r = over(tmp_path, kit, adapters, PayPolicy(refund_attempts=2))
    record = r.settle()
    paid = r.saga.pay_code(record.msgid, WECHAT_CODE)
    outbox = OutboxStore(r.side.db)
    outbox.refuse(outbox.pending(1)[0], "refused upstream", r.side.clock.now(), reverted_accumulators)
    kit.faults(refund_fail=2)
    assert [p.state for p in r.saga.recover()] == ["refunding"]
    assert [p.state for p in r.saga.recover()] == ["refund_manual"]
    assert r.saga.recover() == []
    order = kit.orders()[paid.out_trade_no]
    assert order["state"] == "SUCCESS"  # the money is still at the gateway: staff hand it back
    assert [o.msgid for o in r.store.owed()] == [record.msgid]
