"""The payment saga over a real ledger and a fake gateway: each way a payment ends, both parts agree."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from terminal.domain import INFNO_REVERSE
from terminal.errors import PaymentCodeInvalidError, PaymentUnknownOutcomeError
from terminal.payment_types import PayChannel, PayOrder, PayOutcome, fen_of, out_trade_no_for
from terminal.pipeline.payment import PayPolicy, wallet_of
from terminal.store.audit_check import verify_all
from terminal.store.outbox import OutboxStore
from tests.integration.payment_kit import WECHAT_CODE
from tests.integration.saga_kit import Rig, rig


@pytest.fixture
def r(tmp_path: Path) -> Rig:
    return rig(tmp_path)


def cash_fen(record: object) -> int:
    return fen_of(Decimal(str(record.result["setlinfo"]["psn_cash_pay"])))  # type: ignore[attr-defined]


def test_qr_paid_collects_the_cash_share_once_under_the_msgid_order(r: Rig) -> None:
    record = r.settle()
    shown = r.saga.start_qr(record.msgid)
    assert shown.state == "charging" and shown.code_url and shown.out_trade_no == "MP" + record.msgid
    assert len(shown.out_trade_no) <= 32
    assert r.saga.poll(record.msgid).state == "charging"  # not paid yet
    r.gateway.patient_pays(shown.out_trade_no)
    paid = r.saga.poll(record.msgid)
    assert paid.state == "paid" and paid.transaction_id and paid.wallet == "wechat"
    assert r.gateway.orders[shown.out_trade_no]["fen"] == cash_fen(record) > 0
    assert r.gateway.kept_fen() == cash_fen(record)
    assert r.side.ledger.is_settled(record.chrg_bchno)
    assert verify_all(r.side.db) == []


def test_declined_code_reverses_the_settlement_and_restores_the_totals(r: Rig) -> None:
    before = r.totals()
    record = r.settle()
    assert r.totals() != before
    r.gateway.switches.decline = True
    ended = r.saga.pay_code(record.msgid, WECHAT_CODE)
    assert ended.state == "reversed" and ended.reversal == "voided"
    assert r.totals() == before
    assert not r.side.ledger.is_settled(record.chrg_bchno)  # the bill may be paid again
    assert [row["state"] for row in r.outbox()] == ["voided"]
    assert r.gateway.kept_fen() == 0
    assert verify_all(r.side.db) == []
    # the same bill settles again, with a new msgid and order
    again = r.settle()
    assert again.msgid != record.msgid and r.side.ledger.is_settled(record.chrg_bchno)


def test_userpaying_resolves_within_the_poll_bound(tmp_path: Path) -> None:
    r = rig(tmp_path, policy=PayPolicy(code_polls=5))
    record = r.settle()
    r.gateway.switches.userpaying = 3
    assert r.saga.pay_code(record.msgid, WECHAT_CODE).state == "charging"
    assert r.saga.poll(record.msgid).state == "charging"
    assert r.saga.poll(record.msgid).state == "charging"
    assert r.saga.poll(record.msgid).state == "paid"


def test_userpaying_past_the_bound_closes_the_order_and_reverses(tmp_path: Path) -> None:
    r = rig(tmp_path, policy=PayPolicy(code_polls=2))
    before = r.totals()
    record = r.settle()
    r.gateway.switches.userpaying = 10
    r.saga.pay_code(record.msgid, WECHAT_CODE)
    r.saga.poll(record.msgid)
    ended = r.saga.poll(record.msgid)
    assert ended.state == "reversed"
    assert r.gateway.orders[ended.out_trade_no]["state"] == "CLOSED"
    assert r.totals() == before and r.gateway.kept_fen() == 0


def test_charged_with_the_answer_lost_is_found_by_query(r: Rig) -> None:
    record = r.settle()
    r.gateway.switches.unknown_after_charge = True
    found = r.saga.pay_code(record.msgid, WECHAT_CODE)
    assert found.state == "paid"  # the query after the lost answer found it paid
    assert r.gateway.calls == ["micropay", "query"]


def test_unreachable_gateway_charges_nothing_and_reverses(r: Rig) -> None:
    before = r.totals()
    record = r.settle()
    r.gateway.switches.unreachable = True
    ended = r.saga.start_qr(record.msgid)
    assert ended.state == "reversed" and "unreachable" in ended.reason
    assert r.totals() == before and r.gateway.orders == {}


def test_qr_expiry_closes_the_order(r: Rig) -> None:
    record = r.settle()
    shown = r.saga.start_qr(record.msgid)
    assert shown.expires_at is not None
    r.side.clock.at = shown.expires_at
    ended = r.saga.poll(record.msgid)
    assert ended.state == "reversed" and "expired" in ended.reason
    assert r.gateway.orders[shown.out_trade_no]["state"] == "CLOSED"


def test_patient_walks_away_after_paying_gets_the_money_back(r: Rig) -> None:
    before = r.totals()
    record = r.settle()
    shown = r.saga.start_qr(record.msgid)
    r.gateway.patient_pays(shown.out_trade_no)  # paid, but the terminal gives up before it asks
    ended = r.saga.abandon(record.msgid, "session timeout")
    assert ended.state == "reversed"
    assert r.gateway.orders[shown.out_trade_no]["returned"] is True and r.gateway.kept_fen() == 0
    assert r.totals() == before


@pytest.mark.parametrize("how", ["poll", "abandon", "recover"])
def test_an_order_refunded_outside_the_terminal_undoes_only_the_insurance(r: Rig, how: str) -> None:
    before = r.totals()
    record = r.settle()
    shown = r.saga.start_qr(record.msgid)
    r.gateway.patient_pays(shown.out_trade_no)
    r.gateway.refunded_outside(shown.out_trade_no)  # on the merchant platform, before the terminal asked
    if how == "poll":
        ended = r.saga.poll(record.msgid)
    elif how == "abandon":
        ended = r.saga.abandon(record.msgid, "session timeout")
    else:
        [ended] = r.saga.recover()
    assert ended.state == "reversed" and ended.reason == "refunded outside the terminal"
    assert "refunding" not in ended.phases and ended.phases[-1] == "refunded_outside"
    assert "refund" not in r.gateway.calls and r.gateway.refunds == {}  # no second refund
    assert r.store.owed() == [] and r.totals() == before
    assert verify_all(r.side.db) == []


def test_only_a_charging_saga_is_completed_as_paid(r: Rig) -> None:
    record = r.settle()
    ended = r.saga.abandon(record.msgid, "patient cancelled")
    assert ended.state == "reversed"
    late = r.store.complete_paid(record.msgid, r.side.clock.now(), transaction_id="4200late")
    assert late == ended  # unchanged: a reversed saga is never made paid or refunding
    assert r.store.get(record.msgid) == ended


def test_zero_cash_share_skips_payment(r: Rig) -> None:
    record = r.settle()
    r.side.db.execute("UPDATE payments SET estimate_fen = 0 WHERE msgid = ?", [record.msgid])
    assert r.saga.decide(record.msgid).state == "no_cash"
    assert r.gateway.calls == []


def test_no_gateway_leaves_the_cash_share_to_the_counter(tmp_path: Path) -> None:
    r = rig(tmp_path, gateway=False)
    record = r.settle()
    assert r.saga.decide(record.msgid).state == "external"


class Delivered:
    """A centre link that delivers the 2207 with a binding result differing from the estimate."""

    def __init__(self, r: Rig, cash: str) -> None:
        self._r, self._cash = r, cash

    def deliver_through(self, msgid: str) -> None:
        outbox = OutboxStore(self._r.side.db)
        entry = next(e for e in outbox.pending(10) if e.msgid == msgid)
        output = {"setlinfo": {**(outbox.local_setlinfo(msgid) or {}), "psn_cash_pay": self._cash}}
        outbox.deliver(entry, "REF" + msgid, output, outbox.local_setlinfo(msgid), self._r.side.clock.now())


def test_online_the_binding_result_is_charged_and_a_failure_queues_a_2208(tmp_path: Path) -> None:
    r = rig(tmp_path)
    before = r.totals()
    r.saga._centre = Delivered(r, "12.34")
    record = r.settle()
    due = r.saga.decide(record.msgid)
    assert (due.fen, due.basis, due.estimate_fen != 1234) == (1234, "binding", True)
    r.gateway.switches.decline = True
    ended = r.saga.pay_code(record.msgid, WECHAT_CODE)
    assert ended.reversal == INFNO_REVERSE
    rows = r.outbox()
    assert [(row["infno"], row["state"]) for row in rows] == [
        ("2207", "delivered"),
        (INFNO_REVERSE, "pending"),
    ]
    assert json.loads(rows[1]["envelope"])["input"]["data"]["omsgid"] == record.msgid
    assert r.totals() == before
    assert verify_all(r.side.db) == []


def test_offline_the_estimate_is_charged(tmp_path: Path) -> None:
    class Down:
        def deliver_through(self, msgid: str) -> None:
            from terminal.errors import UplinkUnreachable

            raise UplinkUnreachable("connection refused")

    r = rig(tmp_path, centre=Down())
    record = r.settle()
    due = r.saga.decide(record.msgid)
    assert (due.fen, due.basis) == (cash_fen(record), "estimate")


def test_a_voided_2207_the_centre_committed_in_flight_gets_its_2208(r: Rig) -> None:
    record = r.settle()
    outbox = OutboxStore(r.side.db)
    in_flight = outbox.pending(1)[0]
    r.gateway.switches.decline = True
    r.saga.pay_code(record.msgid, WECHAT_CODE)  # voids it while the sync worker is sending it
    outbox.deliver(in_flight, "REF", {"setlinfo": {}}, None, r.side.clock.now())
    assert [(row["infno"], row["state"]) for row in r.outbox()] == [
        ("2207", "delivered"),
        ("2208", "pending"),
    ]


def test_recovery_completes_a_paid_order_and_reverses_an_unpaid_one(r: Rig) -> None:
    paid, unpaid, due = r.settle(0), r.settle(1), r.settle(2)
    r.gateway.patient_pays(r.saga.start_qr(paid.msgid).out_trade_no)
    r.saga.start_qr(unpaid.msgid)
    r.saga.decide(due.msgid)
    ended = {p.msgid: p.state for p in r.saga.recover()}
    assert ended == {paid.msgid: "paid", unpaid.msgid: "reversed", due.msgid: "reversed"}
    assert r.store.unfinished() == []
    assert r.gateway.kept_fen() == cash_fen(paid)


def test_recovery_skips_the_live_session_and_retries_when_the_gateway_is_down(r: Rig) -> None:
    live, other = r.settle(0), r.settle(1)
    r.saga.start_qr(other.msgid)
    r.gateway.switches.unreachable = True
    assert [p.state for p in r.saga.recover(skip=[live.msgid])] == ["charging"]
    r.gateway.switches.unreachable = False
    assert [p.msgid for p in r.saga.recover(skip=[live.msgid])] == [other.msgid]
    assert r.store.get(live.msgid).state == "settled"  # type: ignore[union-attr]


def test_payment_codes_route_by_prefix() -> None:
    assert wallet_of(WECHAT_CODE) is PayChannel.WECHAT
    assert wallet_of("285678901234567890") is PayChannel.ALIPAY
    assert wallet_of("6212345678901234567") is PayChannel.UNIONPAY
    for bad in ("", "12345", "99" + "0" * 16, "abc" * 6):
        with pytest.raises(PaymentCodeInvalidError):
            wallet_of(bad)


def test_out_trade_no_is_derived_and_bounded() -> None:
    assert out_trade_no_for("H" * 30) == "MP" + "H" * 30
    long = out_trade_no_for("H" * 40)
    assert len(long) == 32 and long == out_trade_no_for("H" * 40) != out_trade_no_for("H" * 41)


def test_an_order_the_gateway_does_not_know_yet_is_cancelled_before_the_reversal(r: Rig) -> None:
    # The micropay went out, its answer was lost and the gateway has no order under the number yet (the
    # request may still be in flight): the saga must close the number before it reverses the settlement,
    # so a late charge is refused instead of taking money with no settlement behind it.
    record = r.settle()
    lost = PaymentUnknownOutcomeError("read timeout")

    def micropay_lost(order: PayOrder, auth_code: str) -> PayOutcome:
        r.gateway.calls.append("micropay")
        raise lost

    r.gateway.micropay = micropay_lost  # type: ignore[method-assign]
    ended = r.saga.pay_code(record.msgid, WECHAT_CODE)
    assert ended.state == "reversed" and not r.side.ledger.is_settled(record.chrg_bchno)
    assert r.gateway.calls.index("cancel") > r.gateway.calls.index("query"), r.gateway.calls
    assert r.gateway.kept_fen() == 0
    assert verify_all(r.side.db) == []


def test_one_payment_code_rule_refuses_a_short_unionpay_code_before_anything_is_charged(r: Rig) -> None:
    record = r.settle()
    with pytest.raises(PaymentCodeInvalidError):
        r.saga.pay_code(record.msgid, "6212345678901234")  # 16 digits: no UnionPay payment code
    assert r.store.get(record.msgid).state == "settled"  # type: ignore[union-attr]  (nothing moved)
    assert wallet_of("6212345678901234567") is PayChannel.UNIONPAY
    assert r.saga.pay_code(record.msgid, WECHAT_CODE).state == "paid"  # a retry is still possible


def test_the_his_hears_of_a_settlement_only_once_its_payment_is_complete(r: Rig) -> None:
    # A restart (or the payment worker) tells the HIS about loaded bills the ledger settled; a settlement
    # whose cash share is still open may yet be reversed, so it is not "settled" for the HIS until paid.
    record = r.settle()
    shown = r.saga.start_qr(record.msgid)
    assert r.side.ledger.settlement_of(record.chrg_bchno) is not None
    assert r.side.ledger.paid_settlement_of(record.chrg_bchno) is None
    r.gateway.patient_pays(shown.out_trade_no)
    assert r.saga.poll(record.msgid).state == "paid"
    assert r.side.ledger.paid_settlement_of(record.chrg_bchno)["msgid"] == record.msgid  # type: ignore[index]
    # a reversed one is never reported
    other = r.settle(1)
    r.gateway.switches.decline = True
    assert r.saga.pay_code(other.msgid, WECHAT_CODE).state == "reversed"
    assert r.side.ledger.paid_settlement_of(other.chrg_bchno) is None
