"""`medpay audit verify`'s cross-check: settlements and outbox rows against their audit records."""

from __future__ import annotations

from pathlib import Path

from terminal.store.audit_check import cross_check, verify_all
from terminal.store.db import open_db
from tests.unit.store.ledger_kit import settle_some


def test_an_untouched_ledger_agrees_with_its_audit_log(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    settle_some(db, 3)
    assert verify_all(db) == []


def test_a_settlement_whose_amount_was_changed_is_reported(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    first, *_ = settle_some(db, 3)
    db.execute("UPDATE settlements SET psn_part_amt = '4.00' WHERE msgid = ?", [first])
    assert cross_check(db) == [f"settlement {first}: psn_part_amt 4.00 in the ledger, 40.00 in the audit log"]


def test_a_settlement_without_its_audit_record_is_reported(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    settle_some(db, 1)
    db.execute(
        "INSERT INTO settlements (msgid, chrg_bchno, psn_no, med_type, identified_by, setl_time,"
        " medfee_sumamt, fund_pay_sumamt, psn_part_amt, result)"
        " VALUES ('M-GHOST', 'B-GHOST', 'P', '11', 'face', 't', '1', '0', '1', '{}')"
    )
    problems = cross_check(db)
    assert "settlement M-GHOST (bill B-GHOST) has no audit record" in problems
    assert "settlement M-GHOST has no outbox entry" in problems


def test_an_audited_settlement_the_ledger_lost_and_a_delivery_nobody_audited_are_reported(
    tmp_path: Path,
) -> None:
    db = open_db(tmp_path)
    first, second = settle_some(db, 2)
    db.execute("DELETE FROM settlements WHERE msgid = ?", [first])
    db.execute("UPDATE outbox SET state = 'delivered' WHERE msgid = ?", [second])
    problems = cross_check(db)
    assert f"audit records settlement {first}, the ledger has no such row" in problems
    assert any(p.endswith(f"({first}) has no settlement") for p in problems)
    assert any(p.endswith(f"({second}) is delivered without an audit record") for p in problems)
