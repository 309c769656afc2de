"""Counter refunds (退费) against the reference gateway: two people, insurance first, then the money.

The saga and refunds run over a real ledger; the gateway is `python -m devkit payment` (payment_kit.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from terminal.clock import CST
from terminal.domain import Match, SettlementRecord
from terminal.errors import ApprovalRequiredError, LaterSettlementsError, RefundRefusedError
from terminal.payment.http import HttpPaymentGateway
from terminal.payment_types import PayOrder, fen_of
from terminal.pipeline.day_report import build_day_report
from terminal.pipeline.payment import PaymentSaga
from terminal.pipeline.refunds import CounterRefunds, Staff, counter_refund_no
from terminal.pipeline.sync import reverted_accumulators
from terminal.store.audit_check import verify_all
from terminal.store.day_report import settlements_of_day, totals_answer
from terminal.store.outbox import OutboxStore
from terminal.store.payments import PaymentStore
from tests.fakes import SteppingClock
from tests.integration.payment_kit import WECHAT_CODE, PaymentKit
from tests.integration.uplink_kit import PEOPLE, Side, bill, terminal_side

CASHIER = Staff("c01", "cashier")
SUPERVISOR = Staff("s01", "supervisor")
OTHER_CASHIER = Staff("c02", "cashier")


def yuan(fen: int) -> str:
    return str((Decimal(fen) / 100).quantize(Decimal("0.01")))


@dataclass
class Counter:
    side: Side
    store: PaymentStore
    saga: PaymentSaga
    refunds: CounterRefunds
    kit: PaymentKit
    gateway: HttpPaymentGateway

    def paid(self, index: int = 0) -> SettlementRecord:
        """Settle bill `index` for 赵一 (cash share, no personal account) and pay it by payment code."""
        person = PEOPLE[0]
        priced = self.side.checkout.price(replace(bill(index), acct_used_flag=False), person.psn_no)
        record = self.side.checkout.settle(priced, Match(person.psn_no, "face-1:N"))
        assert self.saga.pay_code(record.msgid, WECHAT_CODE).state == "paid"
        return record

    def totals(self) -> dict[str, str]:
        state = self.side.ledger.accumulators(PEOPLE[0].psn_no, 2025)
        return {k: str(v) for k, v in dict(state.get("counters", {})).items() if Decimal(str(v)) != 0}

    def audit(self, action: str) -> list[dict[str, object]]:
        rows = self.side.db.query("SELECT actor, detail FROM audit WHERE action = ? ORDER BY seq", [action])
        return [{"actor": r["actor"], **json.loads(r["detail"])} for r in rows]


@pytest.fixture
def c(tmp_path: Path, kit: PaymentKit) -> Iterator[Counter]:
    # The gateway dates its bill by its own clock: the terminal's starts now so both name the same day.
    side = terminal_side(tmp_path, SteppingClock(datetime.now(CST).replace(microsecond=0)))
    store = PaymentStore(side.db)
    gateway = kit.adapter()
    saga = PaymentSaga(store, gateway, side.clock, reverted_accumulators)
    yield Counter(side, store, saga, saga.refunds(), kit, gateway)
    gateway.close()


def test_refund_reverses_the_insurance_then_returns_the_money_once(c: Counter) -> None:
    before = c.totals()
    record = c.paid()
    payment = c.store.get(record.msgid)
    assert payment is not None and payment.fen
    ended = c.refunds.refund(record.msgid, CASHIER, SUPERVISOR, "patient returned the medicine")
    assert ended.state == "refunded" and ended.reversal == "voided"
    assert ended.out_refund_no == counter_refund_no(payment.out_trade_no)
    assert c.totals() == before  # year-to-date totals restored
    assert not c.side.ledger.is_settled(record.chrg_bchno)
    order = c.kit.orders()[payment.out_trade_no]
    assert [(r["out_refund_no"], r["refund_fen"], r["state"]) for r in order["refunds"]] == [
        (ended.out_refund_no, payment.fen, "SUCCESS")
    ]
    approved = c.audit("refund_approved")
    assert approved == [approved[0]] and approved[0]["actor"] == "staff:c01"
    assert approved[0]["approved_by"] == "staff:s01"
    assert verify_all(c.side.db) == []
    # asking again changes nothing: one refund at the gateway
    with pytest.raises(RefundRefusedError):
        c.refunds.refund(record.msgid, CASHIER, SUPERVISOR, "again")
    assert len(c.kit.orders()[payment.out_trade_no]["refunds"]) == 1


def test_a_delivered_settlement_is_reversed_by_a_2208(c: Counter) -> None:
    record = c.paid()
    c.side.db.execute("UPDATE outbox SET state = 'delivered' WHERE msgid = ?", [record.msgid])
    ended = c.refunds.refund(record.msgid, CASHIER, SUPERVISOR, "wrong bill")
    assert ended.state == "refunded" and ended.reversal == "2208"
    infnos = [r["infno"] for r in c.side.db.query("SELECT infno FROM outbox ORDER BY seq")]
    assert infnos == ["2207", "2208"]


def test_a_refund_the_gateway_refuses_stays_recorded_and_recovery_retries_it(c: Counter) -> None:
    record = c.paid()
    c.kit.faults(refund_fail=1)
    due = c.refunds.refund(record.msgid, CASHIER, SUPERVISOR, "patient returned the medicine")
    assert due.state == "refund_due" and "refund_failed:REFUND_FAILED" in due.phases
    assert not c.side.ledger.is_settled(record.chrg_bchno)  # the insurance part is undone already
    [ended] = c.saga.recover()
    assert ended.state == "refunded"
    refunds = c.kit.orders()[due.out_trade_no]["refunds"]
    assert [r["state"] for r in refunds] == ["SUCCESS"]  # the same out_refund_no, retried


@pytest.mark.parametrize("stopped_after", ["approved", "insurance_reversed"])
def test_a_refund_interrupted_between_steps_is_finished_by_recovery(c: Counter, stopped_after: str) -> None:
    before = c.totals()
    record = c.paid()
    payment = c.store.get(record.msgid)
    assert payment is not None
    # What a crash leaves: each step is committed before the next starts.
    c.store.approve_refund(
        record.msgid,
        c.side.clock.now(),
        "staff:c01",
        "staff:s01",
        "crash",
        counter_refund_no(payment.out_trade_no),
    )
    if stopped_after == "insurance_reversed":
        c.store.withdraw(
            record.msgid, c.side.clock.now(), reverted_accumulators, "staff:c01", money_back=True
        )
    [ended] = c.saga.recover()
    assert ended.state == "refunded" and c.totals() == before
    assert len(c.kit.orders()[payment.out_trade_no]["refunds"]) == 1
    assert len(c.audit("payment_reversed")) == 0 and len(c.audit("refund_insurance")) == 1
    assert verify_all(c.side.db) == []


def test_the_same_person_cannot_approve_their_own_refund(c: Counter) -> None:
    record = c.paid()
    same_person = Staff("s01", "supervisor")
    for asking, approving in ((same_person, SUPERVISOR), (CASHIER, OTHER_CASHIER)):
        with pytest.raises(ApprovalRequiredError):
            c.refunds.refund(record.msgid, asking, approving, "x")
    payment = c.store.get(record.msgid)
    assert payment is not None and payment.state == "paid" and c.audit("refund_approved") == []


def test_a_settlement_with_later_ones_for_the_person_is_not_reversed_out_of_order(c: Counter) -> None:
    first, second = c.paid(0), c.paid(1)
    with pytest.raises(LaterSettlementsError) as refused:
        c.refunds.refund(first.msgid, CASHIER, SUPERVISOR, "out of order")
    assert second.msgid in str(refused.value)
    assert refused.value.code == "REFUND_OUT_OF_ORDER" and "之后" in refused.value.message_zh
    assert "out of order" in refused.value.message_en
    first_payment = c.store.get(first.msgid)
    assert first_payment is not None and first_payment.state == "paid"
    # newest first, then the earlier one
    assert c.refunds.refund(second.msgid, CASHIER, SUPERVISOR, "newest").state == "refunded"
    assert c.refunds.refund(first.msgid, CASHIER, SUPERVISOR, "then this").state == "refunded"


def test_day_report_finds_a_planted_difference_on_each_side(c: Counter) -> None:
    kept, differs, refunded = c.paid(0), c.paid(1), c.paid(2)
    c.refunds.refund(refunded.msgid, CASHIER, SUPERVISOR, "returned")
    # Gateway side: an order the ledger never made.
    stray = c.gateway.micropay(PayOrder("MPSTRAY0001", 777, "planted"), WECHAT_CODE)
    # Ledger side: an amount the gateway did not take, and a settlement the centre priced otherwise.
    c.side.db.execute("UPDATE payments SET fen = fen + 1 WHERE msgid = ?", [differs.msgid])
    local = dict(kept.result["setlinfo"])
    cash = fen_of(Decimal(str(local["psn_cash_pay"])))
    binding = {
        **local,
        "psn_cash_pay": str(Decimal(cash + 150) / 100),
        "hifp_pay": str(Decimal(str(local["hifp_pay"])) - Decimal("1.50")),
    }
    c.side.db.execute(
        "INSERT INTO upstream_results (msgid, infno, inf_refmsgid, output, received_at)"
        " VALUES (?, '2207', '', ?, '')",
        [kept.msgid, json.dumps({"setlinfo": binding})],
    )
    day = kept.setl_time.date()
    theirs = {
        "medfee_sumamt": "1.00",
        "fund_pay_sumamt": "0.00",
        "acct_pay": "0.00",
        "fixmedins_setl_cnt": "1",
    }
    OutboxStore(c.side.db).keep_totals(
        day.isoformat(), "1", theirs, {"stmt_rslt": "1", "upstream": theirs}, c.side.clock.now()
    )
    lines = c.gateway.bill(day)
    if {line.at.astimezone(CST).date() for line in lines} != {day}:
        pytest.skip("the gateway's day turned over during the test")
    iso = day.isoformat()
    report = build_day_report(
        iso, settlements_of_day(c.side.db, iso), c.store.of_day(iso), c.store.refunds_of_day(iso),
        totals_answer(c.side.db, iso), lines,
    )  # fmt: skip
    orders = {r["out_trade_no"]: r for r in report["payments"]["orders"]}
    assert orders[stray.out_trade_no]["status"] == "missing_in_ledger"
    assert orders["MP" + differs.msgid]["status"] == "amount_differs"
    assert orders["MP" + kept.msgid]["status"] == "match"
    refunds = {r["out_trade_no"]: r for r in report["payments"]["refunds"]}
    assert refunds["MP" + refunded.msgid]["status"] == "match"
    assert report["insurance"]["settlements"] == 2 and report["insurance"]["reversed"] == 1
    assert {(d["msgid"], d["field"]) for d in report["differences"]} >= {
        (kept.msgid, "psn_cash_pay"),
        (kept.msgid, "hifp_pay"),
    }
    assert report["collect_or_refund"] == [{
        "msgid": kept.msgid, "psn_no": kept.psn_no, "chrg_bchno": kept.chrg_bchno,
        "charged": yuan(cash), "binding": yuan(cash + 150),
        "action": "collect", "amount": "1.50",
    }]  # fmt: skip
    answer = report["insurance"]["totals_3201"]
    assert answer is not None and not answer["agrees"]
    assert {r["field"] for r in answer["fields"] if not r["agrees"]} >= {
        "medfee_sumamt",
        "fixmedins_setl_cnt",
    }
