"""Money after the centre says no: a paid settlement refused at sync (or voided by a technician) is
refunded by the payment worker, reported under refunds, or listed for staff when the gateway keeps
refusing the refund. Also: retries that meet the same answer leave one record, not one per pass."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from terminal.payment_types import fen_of, out_refund_no_for
from terminal.pipeline.day_report import build_day_report
from terminal.pipeline.payment import PayPolicy
from terminal.pipeline.refunds import Staff
from terminal.pipeline.sync import reverted_accumulators
from terminal.store.audit_check import verify_all
from terminal.store.day_report import settlements_of_day
from terminal.store.outbox import OutboxStore
from terminal.store.outbox_parked import ParkedEntries
from terminal.uplink.wire import envelope_problem
from tests.integration.payment_kit import WECHAT_CODE
from tests.integration.saga_kit import Rig, rig


@pytest.fixture
def r(tmp_path: Path) -> Rig:
    return rig(tmp_path)


def cash_fen(record: Any) -> int:
    return fen_of(Decimal(str(record.result["setlinfo"]["psn_cash_pay"])))


def refuse_2207(r: Rig, msgid: str) -> None:
    """The sync worker's refusal of a settlement's 2207 (store path the drain takes)."""
    outbox = OutboxStore(r.side.db)
    entry = next(e for e in outbox.pending(10) if e.msgid == msgid)
    outbox.refuse(entry, "duplicate settlement of this bill", r.side.clock.now(), reverted_accumulators)


def report(r: Rig) -> dict[str, Any]:
    day = r.side.clock.now().date()
    iso = day.isoformat()
    return build_day_report(
        iso, settlements_of_day(r.side.db, iso), r.store.of_day(iso), r.store.refunds_of_day(iso),
        None, r.gateway.bill(day), "", r.store.owed(),
    )  # fmt: skip


def audits(r: Rig, msgid: str, action: str = "payment") -> list[dict[str, Any]]:
    rows = r.side.db.query(
        "SELECT detail FROM audit WHERE action = ? AND subject = ? ORDER BY seq", [action, msgid]
    )
    return [json.loads(row["detail"]) for row in rows]


def test_a_paid_settlement_the_centre_refuses_is_refunded_by_the_worker_and_reported(r: Rig) -> None:
    before = r.totals()
    record = r.settle()  # offline: the estimate is charged
    paid = r.saga.pay_code(record.msgid, WECHAT_CODE)
    assert paid.state == "paid" and r.gateway.kept_fen() == cash_fen(record) > 0
    refuse_2207(r, record.msgid)
    refunding = r.store.get(record.msgid)
    assert refunding is not None and refunding.state == "refunding"
    assert refunding.out_refund_no == out_refund_no_for(paid.out_trade_no)
    assert refunding.reason.startswith("centre refused")
    assert r.totals() == before  # restored with the refusal, in its transaction
    [ended] = r.saga.recover()  # the payment worker's pass
    assert (ended.state, ended.reversal) == ("reversed", "refused")
    assert r.gateway.kept_fen() == 0
    assert r.gateway.refunds[ended.out_refund_no]["fen"] == cash_fen(record)
    assert r.totals() == before  # not taken out twice
    assert not r.side.ledger.is_settled(record.chrg_bchno)
    assert [a["phase"] for a in audits(r, record.msgid)][-1] == "centre_refused"
    assert verify_all(r.side.db) == []
    day = report(r)
    [refund] = day["payments"]["refunds"]
    assert (refund["msgid"], refund["reason"], refund["status"]) == (record.msgid, "centre refused", "match")
    assert refund["ledger"] == str(Decimal(cash_fen(record)) / 100)
    assert day["refunds_owed"] == [] and day["insurance"]["unconfirmed"] == []
    assert r.saga.recover() == []  # nothing left to retry


def test_a_technician_voiding_the_parked_2207_refunds_what_the_patient_paid(r: Rig) -> None:
    record = r.settle()
    r.saga.pay_code(record.msgid, WECHAT_CODE)
    outbox = OutboxStore(r.side.db)
    outbox.park(outbox.pending(1)[0], "no such insured person", r.side.clock.now())
    ParkedEntries(r.side.db).void(
        record.msgid, "wrong person", "li", r.side.clock.now(), reverted_accumulators
    )
    refunding = r.store.get(record.msgid)
    assert refunding is not None and refunding.state == "refunding"
    assert audits(r, record.msgid)[-1]["phase"] == "centre_refused"
    [ended] = r.saga.recover()
    assert (ended.state, ended.reversal) == ("reversed", "voided") and r.gateway.kept_fen() == 0


def test_paid_while_the_centre_refused_is_refunded_not_completed(r: Rig) -> None:
    record = r.settle()
    shown = r.saga.start_qr(record.msgid)
    refuse_2207(r, record.msgid)  # the background sync, while the QR is on the screen
    r.gateway.patient_pays(shown.out_trade_no)
    ended = r.saga.poll(record.msgid)
    assert ended.state == "reversed" and "centre_refused" in ended.phases and "paid" not in ended.phases
    assert r.gateway.kept_fen() == 0


def test_a_refund_the_gateway_keeps_refusing_is_left_for_staff_and_listed(tmp_path: Path) -> None:
    r = rig(tmp_path, policy=PayPolicy(refund_attempts=3))
    before = r.totals()
    record = r.settle()
    r.saga.pay_code(record.msgid, WECHAT_CODE)
    refuse_2207(r, record.msgid)
    r.gateway.switches.refund_fail = 10
    assert [p.state for p in r.saga.recover()] == ["refunding"]
    assert [p.state for p in r.saga.recover()] == ["refunding"]
    [manual] = r.saga.recover()
    assert manual.state == "refund_manual" and manual.attempts == 3 and "REFUND_FAIL" in manual.last_error
    assert r.gateway.calls.count("refund") == 3
    assert r.saga.recover() == []  # no more automatic retries: staff hand the money back
    assert r.gateway.kept_fen() == cash_fen(record)  # still held at the gateway: owed to the patient
    assert r.totals() == before and not r.side.ledger.is_settled(record.chrg_bchno)
    # one record for the run of identical refusals, then the hand-over
    assert [a["phase"] for a in audits(r, record.msgid)][-2:] == [
        "centre_refused",
        "refund_failed:REFUND_FAILED",
    ]
    assert audits(r, record.msgid, "payment_reversed")[-1]["to"] == "refund_manual"
    [owed] = report(r)["refunds_owed"]
    assert (owed["msgid"], owed["reason"], owed["action"]) == (
        record.msgid,
        "centre refused",
        "refund by hand",
    )
    assert owed["amount"] == str(Decimal(cash_fen(record)) / 100)
    assert verify_all(r.side.db) == []


def test_a_stuck_poll_counts_in_the_row_and_records_once(r: Rig) -> None:
    record = r.settle()
    r.saga.start_qr(record.msgid)
    r.gateway.switches.unreachable = True
    recorded = len(audits(r, record.msgid))
    for _ in range(5):
        assert r.saga.poll(record.msgid).state == "charging"
    payment = r.store.get(record.msgid)
    assert payment is not None and payment.polls == 5
    assert payment.phases.count("poll:unknown") == 1
    assert len(audits(r, record.msgid)) == recorded + 1
    r.gateway.switches.unreachable = False
    assert r.saga.poll(record.msgid).phases[-1] == "poll:NOTPAY"  # a new answer is recorded


def test_a_stuck_refund_records_once_per_error(tmp_path: Path) -> None:
    r = rig(tmp_path, policy=PayPolicy(refund_attempts=10))  # within budget: it stays due
    record = r.settle()
    r.saga.pay_code(record.msgid, WECHAT_CODE)
    r.gateway.switches.refund_fail = 10
    due = r.saga.refunds().refund(
        record.msgid, Staff("c01", "cashier"), Staff("s01", "supervisor"), "returned"
    )
    assert due.state == "refund_due"
    for _ in range(4):
        r.saga.recover()
    payment = r.store.get(record.msgid)
    assert payment is not None and payment.state == "refund_due" and payment.attempts == 5
    assert payment.phases.count("refund_failed:REFUND_FAILED") == 1
    assert [a["phase"] for a in audits(r, record.msgid)].count("refund_failed:REFUND_FAILED") == 1
    assert [o["reason"] for o in report(r)["refunds_owed"]] == ["counter refund"]
    r.gateway.switches.refund_fail = 0
    assert [p.state for p in r.saga.recover()] == ["refunded"]


def delivered_then_pruned(r: Rig, msgid: str) -> dict[str, Any]:
    """Deliver the settlement's 2207, then drop delivered envelopes (the store's prune); its envelope."""
    outbox = OutboxStore(r.side.db)
    entry = next(e for e in outbox.pending(10) if e.msgid == msgid)
    local = outbox.local_setlinfo(msgid)
    outbox.deliver(entry, "REF" + msgid, {"setlinfo": dict(local or {})}, local, r.side.clock.now())
    assert outbox.prune_delivered(keep=0) == 1
    assert r.outbox() == []
    return dict(entry.envelope)


def assert_reversal_of(r: Rig, msgid: str, sent: dict[str, Any]) -> None:
    [row] = r.outbox()
    assert (row["infno"], row["state"]) == ("2208", "pending")
    envelope = json.loads(row["envelope"])
    assert envelope["input"]["data"] == {"psn_no": sent["input"]["data"]["psn_no"], "omsgid": msgid}
    header = {k: v for k, v in sent.items() if k not in ("input", "msgid", "infno", "inf_time", "sign_no")}
    assert {k: envelope[k] for k in header} == header
    assert envelope_problem(envelope) == ""


def test_a_counter_refund_after_the_delivered_2207_was_pruned_queues_its_2208(r: Rig) -> None:
    before = r.totals()
    record = r.settle()
    assert r.saga.pay_code(record.msgid, WECHAT_CODE).state == "paid"
    sent = delivered_then_pruned(r, record.msgid)
    ended = r.saga.refunds().refund(
        record.msgid, Staff("c01", "cashier"), Staff("s01", "supervisor"), "returned"
    )
    assert (ended.state, ended.reversal) == ("refunded", "2208")
    assert_reversal_of(r, record.msgid, sent)
    assert r.totals() == before and r.gateway.kept_fen() == 0
    assert verify_all(r.side.db) == []


def test_an_abandoned_payment_after_the_2207_was_pruned_queues_its_2208(r: Rig) -> None:
    record = r.settle()
    r.saga.start_qr(record.msgid)
    sent = delivered_then_pruned(r, record.msgid)
    ended = r.saga.abandon(record.msgid, "the patient walked away")
    assert (ended.state, ended.reversal) == ("reversed", "2208")
    assert_reversal_of(r, record.msgid, sent)


def test_a_row_kept_before_the_header_column_reverses_from_its_queued_envelope(r: Rig) -> None:
    record = r.settle()
    r.saga.start_qr(record.msgid)
    sent = dict(OutboxStore(r.side.db).pending(1)[0].envelope)
    r.side.db.execute("UPDATE payments SET header = '' WHERE msgid = ?", [record.msgid])  # as before 0021
    r.side.db.execute("UPDATE outbox SET state = 'delivered' WHERE msgid = ?", [record.msgid])
    ended = r.saga.abandon(record.msgid, "cancelled")
    assert ended.reversal == "2208"
    rows = r.outbox()
    assert [row["infno"] for row in rows] == ["2207", "2208"]
    envelope = json.loads(rows[1]["envelope"])
    assert (
        envelope["fixmedins_code"] == sent["fixmedins_code"]
        and envelope["input"]["data"]["omsgid"] == record.msgid
    )
