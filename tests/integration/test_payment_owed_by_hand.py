"""Money owed back by hand: a refund the gateway refused for good, or cash collected at the counter for a
settlement the centre then refused, stays on the day report until a supervisor records handing it back
(`refunded_by_hand`, audited), at the office page or with `medpay payment refunded-by-hand`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from devkit.serving import serving
from terminal.app import Terminal
from terminal.cli.main import main
from terminal.cli.staff import differs
from terminal.errors import RefundRefusedError
from terminal.pipeline.payment import PayPolicy
from terminal.pipeline.refunds import Staff
from terminal.pipeline.sync import reverted_accumulators
from terminal.service.app import create_app
from terminal.store.audit_check import verify_all
from terminal.store.hand_refunds import record_hand_refund
from terminal.store.outbox import OutboxStore
from terminal.store.outbox_parked import ParkedEntries
from terminal.store.staff import StaffStore
from tests.fakes import FixedClock
from tests.integration.payment_kit import WECHAT_CODE
from tests.integration.saga_kit import Rig, rig
from tests.integration.test_payment_refusals import audits, cash_fen, refuse_2207, report
from tests.integration.uplink_kit import terminal_side

PASSWORD = "correct horse 1"
DAY = ["report", "day", "--date", "2025-06-03", "--json"]


def refund_manual(tmp_path: Path) -> tuple[Rig, str]:
    """A paid settlement the centre refused whose refund the gateway kept refusing: owed by hand."""
    r = rig(tmp_path, policy=PayPolicy(refund_attempts=1))
    record = r.settle()
    r.saga.pay_code(record.msgid, WECHAT_CODE)
    refuse_2207(r, record.msgid)
    r.gateway.switches.refund_fail = 5
    assert [p.state for p in r.saga.recover()] == ["refund_manual"]
    return r, record.msgid


def test_a_refund_handed_back_by_hand_leaves_the_owed_list_audited(tmp_path: Path) -> None:
    r, msgid = refund_manual(tmp_path)
    owing = report(r)
    assert [o["msgid"] for o in owing["refunds_owed"]] == [msgid] and differs(owing)
    at = r.side.clock.now()
    with pytest.raises(RefundRefusedError):
        record_hand_refund(r.side.db, msgid, "  ", at, "staff:s01")  # no receipt number
    ended = record_hand_refund(r.side.db, msgid, "HK-0042", at, "technician:li", named_supervisor="s01")
    assert ended.state == "refunded_by_hand" and ended.phases[-1] == "refunded_by_hand"
    [done] = audits(r, msgid, "refunded_by_hand")
    assert done == {
        "from": "refund_manual", "to": "refunded_by_hand", "fen": ended.fen, "receipt_no": "HK-0042",
        "out_trade_no": ended.out_trade_no, "named_supervisor": "s01",
    }  # fmt: skip
    [row] = r.side.db.query("SELECT actor FROM audit WHERE action = 'refunded_by_hand'")
    assert row["actor"] == "technician:li"
    settled = report(r)
    assert settled["refunds_owed"] == [] and not differs(settled)
    assert r.saga.recover() == []  # an end: nothing retries it
    with pytest.raises(RefundRefusedError):
        record_hand_refund(r.side.db, msgid, "HK-0043", at, "staff:s01")  # once only
    assert verify_all(r.side.db) == []


def test_a_counter_refund_the_gateway_keeps_refusing_ends_owed_by_hand(tmp_path: Path) -> None:
    r = rig(tmp_path, policy=PayPolicy(refund_attempts=3))
    record = r.settle()
    assert r.saga.pay_code(record.msgid, WECHAT_CODE).state == "paid"
    r.gateway.switches.refund_fail = 1000
    due = r.saga.refunds().refund(record.msgid, Staff("c1", "cashier"), Staff("s1", "supervisor"), "back")
    assert due.state == "refund_due" and due.attempts == 1
    r.gateway.switches.unreachable = True  # a lost answer may have gone through: never counted
    assert [(p.state, p.attempts) for p in r.saga.recover()] == [("refund_due", 1)]
    r.gateway.switches.unreachable = False
    assert [(p.state, p.attempts) for p in r.saga.recover()] == [("refund_due", 2)]
    assert [(p.state, p.attempts) for p in r.saga.recover()] == [("refund_manual", 3)]
    assert r.saga.recover() == []  # an end: nothing retries it
    assert [p.msgid for p in r.store.owed()] == [record.msgid]
    [moved] = [a for a in audits(r, record.msgid, "payment") if a.get("to") == "refund_manual"]
    assert moved["from"] == "refund_due"
    ended = record_hand_refund(r.side.db, record.msgid, "HK-1", r.side.clock.now(), "staff:s1")
    assert ended.state == "refunded_by_hand" and r.store.owed() == []
    assert verify_all(r.side.db) == []


def test_only_money_owed_by_hand_is_recorded_so(tmp_path: Path) -> None:
    r = rig(tmp_path)
    record = r.settle()
    r.saga.pay_code(record.msgid, WECHAT_CODE)
    with pytest.raises(RefundRefusedError):
        record_hand_refund(r.side.db, record.msgid, "HK-1", r.side.clock.now(), "staff:s01")
    assert r.store.get(record.msgid).state == "paid"  # type: ignore[union-attr]


@pytest.mark.parametrize("how", ["refuse", "void"])
def test_counter_cash_for_a_settlement_the_centre_will_not_have_is_owed_by_hand(
    tmp_path: Path, how: str
) -> None:
    r = rig(tmp_path, gateway=False)  # no gateway: the cash share is collected at the counter
    before = r.totals()
    record = r.settle()
    assert r.saga.decide(record.msgid).state == "external"
    if how == "refuse":
        refuse_2207(r, record.msgid)
    else:
        outbox = OutboxStore(r.side.db)
        outbox.park(outbox.pending(1)[0], "bad envelope", r.side.clock.now())
        ParkedEntries(r.side.db).void(
            record.msgid, "wrong person", "li", r.side.clock.now(), reverted_accumulators
        )
    owed = r.store.get(record.msgid)
    assert owed is not None and owed.state == "refund_manual" and "centre_refused" in owed.phases
    assert owed.reversal == ("refused" if how == "refuse" else "voided")
    assert r.totals() == before and not r.side.ledger.is_settled(record.chrg_bchno)  # the bill is free
    day = report(r)
    [listed] = day["refunds_owed"]
    assert (listed["msgid"], listed["reason"], listed["action"]) == (
        record.msgid,
        "centre refused",
        "refund by hand",
    )
    assert "collected at the counter" in listed["detail"]
    assert listed["amount"] == str(Decimal(cash_fen(record)) / 100)
    # not settled: out of the day's insurance totals
    assert (day["insurance"]["settlements"], day["insurance"]["reversed"]) == (0, 1)
    assert all(f["ledger"] == "0.00" for f in day["insurance"]["funds"])
    record_hand_refund(r.side.db, record.msgid, "HK-7", r.side.clock.now(), "staff:s01")
    assert report(r)["refunds_owed"] == []


def test_a_refused_settlement_with_no_cash_owes_nothing_and_leaves_the_totals(tmp_path: Path) -> None:
    r = rig(tmp_path)
    record = r.settle()
    r.side.db.execute("UPDATE payments SET state = 'no_cash', fen = 0 WHERE msgid = ?", [record.msgid])
    refuse_2207(r, record.msgid)
    assert r.store.get(record.msgid).state == "no_cash"  # type: ignore[union-attr]
    day = report(r)
    assert day["refunds_owed"] == [] and day["insurance"]["settlements"] == 0


def test_a_refused_paid_settlement_leaves_the_totals_at_once(tmp_path: Path) -> None:
    r = rig(tmp_path)
    record = r.settle()
    r.saga.pay_code(record.msgid, WECHAT_CODE)
    refuse_2207(r, record.msgid)
    assert report(r)["insurance"]["settlements"] == 0  # before the worker's refund
    assert [p.state for p in r.saga.recover()] == ["reversed"]


# ---- the office page's route and the CLI ----------------------------------------------------------


def owed_at_counter(data_dir: Path) -> str:
    """A settlement in the terminal's ledger the centre refused after ¥42 cash was taken at the counter."""
    side = terminal_side(data_dir, FixedClock())
    record = side.settle(0)
    side.db.execute("UPDATE payments SET state = 'external', fen = 4200 WHERE msgid = ?", [record.msgid])
    outbox = OutboxStore(side.db)
    entry = next(e for e in outbox.pending(10) if e.msgid == record.msgid)
    outbox.refuse(entry, "duplicate settlement", side.clock.now(), reverted_accumulators)
    return record.msgid


@pytest.fixture
def client(terminal: Terminal) -> Iterator[httpx.Client]:
    store = StaffStore(terminal.db)
    at = terminal.clock.now()
    store.add("c01", "王收银", "cashier", PASSWORD, at, "technician:test")
    store.add("s01", "张主管", "supervisor", PASSWORD, at, "technician:test")
    app = create_app(terminal, cashier_token="c", technician_token="t")
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        yield http


def _bearer(client: httpx.Client, staff_id: str) -> dict[str, str]:
    reply = client.post("/api/staff/sign-in", json={"staff_id": staff_id, "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['token']}"}


def test_a_signed_in_supervisor_records_it_at_the_office_page(
    client: httpx.Client, terminal: Terminal, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    msgid = owed_at_counter(data_dir)
    args = ["--data-dir", str(data_dir)]
    assert main([*args, *DAY]) == 3  # owed
    assert json.loads(capsys.readouterr().out)["refunds_owed"][0]["msgid"] == msgid
    body = {"msgid": msgid, "receipt_no": "HK-9"}
    path = "/api/counter/refunded-by-hand"
    assert client.post(path, json=body, headers={"Authorization": "Bearer c"}).status_code == 401
    cashier = client.post(path, json=body, headers=_bearer(client, "c01"))
    assert cashier.status_code == 403 and cashier.json()["code"] == "SUPERVISOR_APPROVAL_REQUIRED"
    done = client.post(path, json=body, headers=_bearer(client, "s01"))
    assert done.status_code == 200 and done.json()["state"] == "refunded_by_hand"
    assert done.json()["by"] == "staff:s01"
    again = client.post(path, json=body, headers=_bearer(client, "s01"))
    assert again.status_code == 409 and again.json()["code"] == "REFUND_REFUSED"
    [row] = terminal.db.query("SELECT actor, detail FROM audit WHERE action = 'refunded_by_hand'")
    assert row["actor"] == "staff:s01" and json.loads(row["detail"])["receipt_no"] == "HK-9"
    assert main([*args, *DAY]) == 0  # nothing owed any more
    day = next(
        s
        for s in client.get(
            "/api/counter/settlements?date=2025-06-03", headers={"Authorization": "Bearer c"}
        ).json()["settlements"]
        if s["msgid"] == msgid
    )
    assert day["payment"] == "refunded_by_hand" and day["reversed"]


def test_the_cli_records_it_for_a_named_supervisor(
    terminal: Terminal, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = StaffStore(terminal.db)
    store.add("c01", "王收银", "cashier", PASSWORD, terminal.clock.now(), "technician:test")
    store.add("s01", "张主管", "supervisor", PASSWORD, terminal.clock.now(), "technician:test")
    msgid = owed_at_counter(data_dir)
    args = ["--data-dir", str(data_dir), "payment", "refunded-by-hand", msgid, "--ref", "HK-5"]
    assert main([*args, "--by", "c01"]) == 1
    assert "SUPERVISOR_APPROVAL_REQUIRED" in capsys.readouterr().err
    assert main([*args, "--by", "nobody"]) == 1
    assert "COUNTER_REFUSED" in capsys.readouterr().err
    assert main([*args, "--by", "s01", "--operator", "it-li"]) == 0
    assert "named supervisor s01, recorded by technician:it-li, receipt HK-5" in capsys.readouterr().out
    [row] = terminal.db.query("SELECT actor, detail FROM audit WHERE action = 'refunded_by_hand'")
    # Nobody signed in: the operator is the actor, the supervisor only named (no password vouched).
    assert row["actor"] == "technician:it-li" and json.loads(row["detail"])["named_supervisor"] == "s01"
    assert main(["--data-dir", str(data_dir), *DAY]) == 0
