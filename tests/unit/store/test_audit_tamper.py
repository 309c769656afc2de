"""`medpay audit verify` names each kind of tampering with the keyed chain (issue 17, item 2)."""

from __future__ import annotations

import json
from pathlib import Path

import sqlite_utils

from terminal.store.audit_check import all_findings, verify_all
from terminal.store.db import open_db
from tests.unit.store import audit_attacks as attack
from tests.unit.store.ledger_kit import settle_some


def _kinds(db: sqlite_utils.Database) -> set[str]:
    return {finding.kind for finding in all_findings(db)}


def _ledger(tmp_path: Path, count: int = 4) -> tuple[sqlite_utils.Database, list[str]]:
    db = open_db(tmp_path)
    msgids = settle_some(db, count)
    assert verify_all(db) == []
    return db, msgids


def test_an_edited_record_is_named_an_edit(tmp_path: Path) -> None:
    db, _ = _ledger(tmp_path)
    db.execute("UPDATE audit SET subject = 'someone else' WHERE seq = 2")
    assert _kinds(db) == {"edit", "ledger"}  # the settlement's person no longer agrees either
    assert any("row 2: content edited" in p for p in verify_all(db))


def test_edit_rehash_and_reanchor_without_the_key_is_named_a_rehash(tmp_path: Path) -> None:
    db, _ = _ledger(tmp_path)
    db.execute("""UPDATE audit SET detail = json_set(detail, '$.psn_part_amt', '0.40') WHERE seq = 2""")
    db.execute("UPDATE settlements SET psn_part_amt = '0.40' WHERE rowid = 2")
    attack.rehash_plain(db, 2)
    problems = verify_all(db)
    assert "re-hash" in _kinds(db)
    assert any("rows 2..4: re-hashed with plain SHA-256" in p for p in problems), problems


def test_deleting_the_newest_two_and_moving_the_anchor_is_named_a_truncation(tmp_path: Path) -> None:
    db, _ = _ledger(tmp_path)
    attack.delete_newest(db, 2)
    assert "truncate" in _kinds(db)
    assert any("does not match the anchored chain head" in p for p in verify_all(db))


def test_deleting_everything_is_named_delete_all(tmp_path: Path) -> None:
    db, _ = _ledger(tmp_path)
    attack.delete_all(db)
    assert "delete-all" in _kinds(db)
    assert any("the audit log is empty but 4 settlements rows exist" in p for p in verify_all(db))


def test_a_new_terminal_with_an_empty_log_is_intact(tmp_path: Path) -> None:
    assert verify_all(open_db(tmp_path)) == []


def test_reordered_records_rehashed_are_named_a_reorder(tmp_path: Path) -> None:
    db, _ = _ledger(tmp_path)
    attack.swap_contents(db, 2, 3)
    attack.rehash_plain(db, 2)
    problems = verify_all(db)
    assert "reorder" in _kinds(db)
    assert any("row 2 holds the record written as row 3" in p for p in problems), problems
    assert any("row 3 holds the record written as row 2" in p for p in problems), problems


def test_settlement_amounts_changed_are_named(tmp_path: Path) -> None:
    db, msgids = _ledger(tmp_path)
    # Not one of the two amounts the record repeats: only the digest catches it.
    db.execute("UPDATE settlements SET fund_pay_sumamt = '99.00' WHERE msgid = ?", [msgids[1]])
    assert _kinds(db) == {"amounts"}
    assert verify_all(db) == [
        f"[amounts] settlement {msgids[1]}: amounts or result changed since they were audited"
    ]


def test_outbox_envelope_amounts_changed_are_named(tmp_path: Path) -> None:
    db, msgids = _ledger(tmp_path)
    row = next(iter(db.query("SELECT seq, envelope FROM outbox WHERE msgid = ?", [msgids[2]])))
    envelope = json.loads(row["envelope"]) | {"input": {"medfee_sumamt": "1.00"}}
    db.execute("UPDATE outbox SET envelope = ? WHERE seq = ?", [json.dumps(envelope), row["seq"]])
    assert _kinds(db) == {"envelope"}
    assert any(f"({msgids[2]}): envelope changed" in p for p in verify_all(db))


def test_an_attacker_holding_the_key_passes_the_local_check(tmp_path: Path) -> None:
    # The key sits in the data folder: truncation re-MACed with it is invisible locally. Only the
    # upstream's comparison with the heads it received catches it (tests/integration/test_audit_heads.py).
    db, _ = _ledger(tmp_path)
    attack.delete_newest(db, 2)
    attack.rekey_with_the_key(db)
    assert _kinds(db) == {"ledger"}  # only the settlements whose records went are left to tell
    db.execute("DELETE FROM settlements WHERE rowid > 2")
    db.execute("DELETE FROM outbox WHERE seq > 2")
    assert verify_all(db) == []
