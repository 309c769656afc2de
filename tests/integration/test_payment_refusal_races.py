"""The saga against a settlement the centre refuses (or a technician voids) at awkward moments: a refund's
retry budget of its own, a refusal or void landing anywhere around the move to paid (another process),
and a refused settlement's QR or payment code that must not stay payable."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from terminal.errors import PaymentUnknownOutcomeError, SessionStateError
from terminal.payment_types import PayOrder, PayOutcome
from terminal.pipeline.payment import PaymentSaga, PayPolicy
from terminal.pipeline.refunds import Staff
from terminal.pipeline.sync import reverted_accumulators
from terminal.store.outbox import OutboxStore
from terminal.store.outbox_parked import ParkedEntries
from terminal.store.payments import PaymentStore
from tests.integration.payment_kit import WECHAT_CODE
from tests.integration.saga_kit import Rig, rig
from tests.integration.test_payment_refusals import refuse_2207


def lose_create_answers(r: Rig, lost: int) -> None:
    """The gateway takes every QR create but the first `lost` answers never arrive."""
    real = r.gateway.create_qr
    sent = {"n": 0}

    def create(order: PayOrder, expires_s: int) -> PayOutcome:
        sent["n"] += 1
        out = real(order, expires_s)
        if sent["n"] <= lost:
            raise PaymentUnknownOutcomeError("the answer was lost")
        return out

    r.gateway.create_qr = create  # type: ignore[method-assign]


def qr_after_three_creates(r: Rig) -> str:
    """A QR shown after its create was sent three times (two answers lost): attempts is 3."""
    lose_create_answers(r, 2)
    record = r.settle()
    r.saga.start_qr(record.msgid)
    r.saga.poll(record.msgid)
    shown = r.saga.poll(record.msgid)
    assert shown.code_url and shown.attempts == 3
    return record.msgid


def test_a_refund_after_a_refused_settlement_has_its_own_budget(tmp_path: Path) -> None:
    r = rig(tmp_path, policy=PayPolicy(refund_attempts=3, create_attempts=3))
    msgid = qr_after_three_creates(r)
    refuse_2207(r, msgid)
    r.gateway.patient_pays(r.store.get(msgid).out_trade_no)  # type: ignore[union-attr]
    r.gateway.switches.refund_fail = 1  # one refusal, then the gateway refunds
    after_one = r.saga.poll(msgid)
    assert (after_one.state, after_one.attempts) == ("refunding", 1)
    [ended] = r.saga.recover()
    assert ended.state == "reversed" and r.gateway.kept_fen() == 0


def test_a_refund_after_closing_a_paid_order_has_its_own_budget(tmp_path: Path) -> None:
    r = rig(tmp_path, policy=PayPolicy(refund_attempts=3, create_attempts=3))
    msgid = qr_after_three_creates(r)
    order = r.store.get(msgid).out_trade_no  # type: ignore[union-attr]
    r.gateway.patient_pays(order)
    # A gateway whose close leaves a paid order paid (WeChat's close answers ORDERPAID): it is refunded.
    r.gateway.cancel = r.gateway.query  # type: ignore[method-assign]
    r.gateway.switches.refund_fail = 1
    after_one = r.saga.abandon(msgid, "the patient cancelled")
    assert (after_one.state, after_one.attempts, after_one.phases[-2]) == ("refunding", 1, "refund_sent")
    assert r.saga.recover()[0].state == "reversed" and r.gateway.kept_fen() == 0


def test_a_counter_refund_counts_its_refusals_from_nought(tmp_path: Path) -> None:
    r = rig(tmp_path)
    msgid = qr_after_three_creates(r)
    r.gateway.patient_pays(r.store.get(msgid).out_trade_no)  # type: ignore[union-attr]
    assert r.saga.poll(msgid).state == "paid"
    r.gateway.switches.refund_fail = 1
    due = r.saga.refunds().refund(msgid, Staff("c01", "cashier"), Staff("s01", "supervisor"), "returned")
    assert (due.state, due.attempts) == ("refund_due", 1)


class Interleaved:
    """The saga's ledger; once armed, another process's commit (`land`) lands just before its `at`-th call."""

    def __init__(self, store: PaymentStore, land: Callable[[], None], at: int) -> None:
        self._store, self._land, self._at = store, land, at
        self.armed, self.calls, self.landed = False, 0, False

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._store, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.armed and not self.landed:
                self.calls += 1
                if self.calls == self._at:
                    self.landed = True
                    self._land()
            return real(*args, **kwargs)

        return call


@pytest.mark.parametrize("how", ["void", "refuse"])
@pytest.mark.parametrize("at", [1, 2, 3])
def test_a_void_or_refusal_landing_around_the_move_to_paid_never_keeps_the_money(
    tmp_path: Path, how: str, at: int
) -> None:
    r = rig(tmp_path)
    record = r.settle()
    outbox = OutboxStore(r.side.db)
    if how == "void":
        outbox.park(outbox.pending(1)[0], "bad envelope", r.side.clock.now())

    def land() -> None:
        # `medpay outbox void` or `medpay sync` in another process: its own transaction, its own lock.
        now = r.side.clock.now()
        if how == "void":
            ParkedEntries(r.side.db).void(record.msgid, "wrong person", "li", now, reverted_accumulators)
        else:
            entry = next(e for e in outbox.pending(10) if e.msgid == record.msgid)
            outbox.refuse(entry, "duplicate settlement of this bill", now, reverted_accumulators)

    ledger = Interleaved(r.store, land, at)
    saga = PaymentSaga(ledger, r.gateway, r.side.clock, reverted_accumulators)  # type: ignore[arg-type]
    charge = r.gateway.micropay

    def charged(order: PayOrder, code: str) -> PayOutcome:
        outcome = charge(order, code)
        ledger.armed = True  # the patient's money is taken: from here on the other process may commit
        return outcome

    r.gateway.micropay = charged  # type: ignore[method-assign]
    saga.pay_code(record.msgid, WECHAT_CODE)
    if not ledger.landed:
        land()  # after the saga's last step
    row = next(iter(r.side.db.query("SELECT state FROM outbox WHERE msgid = ?", [record.msgid])))
    assert row["state"] == ("voided" if how == "void" else "refused")
    after = r.store.get(record.msgid)
    assert after is not None and after.state in ("refunding", "reversed"), after.phases
    r.saga.recover()
    ended = r.store.get(record.msgid)
    assert ended is not None and ended.state == "reversed" and "centre_refused" in ended.phases
    assert r.gateway.kept_fen() == 0


def test_a_refused_settlements_qr_stops_being_payable(tmp_path: Path) -> None:
    r = rig(tmp_path)
    record = r.settle()
    shown = r.saga.start_qr(record.msgid)
    refuse_2207(r, record.msgid)
    ended = r.saga.poll(record.msgid)
    assert ended.state == "reversed" and ended.reversal == "refused"
    assert r.gateway.orders[shown.out_trade_no]["state"] == "CLOSED"  # the patient can no longer pay it
    with pytest.raises(SessionStateError):
        r.saga.start_qr(record.msgid)  # the kiosk asking to show it again gets no QR
    assert r.gateway.kept_fen() == 0


def test_a_voided_settlements_payment_code_wait_is_abandoned(tmp_path: Path) -> None:
    r = rig(tmp_path)
    record = r.settle()
    outbox = OutboxStore(r.side.db)
    outbox.park(outbox.pending(1)[0], "bad envelope", r.side.clock.now())
    r.gateway.switches.userpaying = 5  # the patient is typing their password
    waiting = r.saga.pay_code(record.msgid, WECHAT_CODE)
    assert waiting.state == "charging"
    ParkedEntries(r.side.db).void(
        record.msgid, "wrong person", "li", r.side.clock.now(), reverted_accumulators
    )
    ended = r.saga.poll(record.msgid)
    assert (ended.state, ended.reversal) == ("reversed", "voided") and r.gateway.kept_fen() == 0


def test_a_voided_2207_is_never_charged(tmp_path: Path) -> None:
    r = rig(tmp_path)
    record = r.settle()
    outbox = OutboxStore(r.side.db)
    outbox.park(outbox.pending(1)[0], "bad envelope", r.side.clock.now())
    ParkedEntries(r.side.db).void(
        record.msgid, "wrong person", "li", r.side.clock.now(), reverted_accumulators
    )
    with pytest.raises(SessionStateError):
        r.saga.pay_code(record.msgid, WECHAT_CODE)
    ended = r.store.get(record.msgid)
    assert ended is not None and ended.state == "reversed"
    assert "micropay" not in r.gateway.calls and r.gateway.kept_fen() == 0
