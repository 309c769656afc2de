"""A settlement recorded before migration 0021 whose delivered 2207 envelope was pruned can be reversed:
its header is rebuilt from what the terminal knows when it opens its database (app/reversal_headers.py).

The database is brought back to its shape before 0021 (the columns 0021 adds dropped, the migration
unrecorded), as a terminal upgraded from then finds it; the next start applies 0021 again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlite_utils

from terminal.app import build_terminal
from terminal.app.reversal_headers import insured_place
from terminal.config import DEFAULT_CONFIG, load
from terminal.pipeline.refunds import Staff
from terminal.store.outbox import OutboxStore
from terminal.store.people import device_keys, upsert_person
from terminal.uplink.wire import envelope_problem
from tests.fakes import FixedClock
from tests.integration.payment_kit import WECHAT_CODE
from tests.integration.saga_kit import CASH_PERSON, Rig, rig
from tests.integration.uplink_kit import PEOPLE


def _paid_then_pruned(data: Path, gateway: Path, registered: bool) -> tuple[str, dict[str, Any]]:
    """A paid settlement whose 2207 was delivered and pruned, in a database as before 0021; its envelope."""
    r = rig(data, gateway)
    if registered:
        upsert_person(r.side.db, device_keys(r.side.db, data), PEOPLE[CASH_PERSON])
    record = r.settle()
    assert r.saga.pay_code(record.msgid, WECHAT_CODE).state == "paid"
    outbox = OutboxStore(r.side.db)
    entry = next(e for e in outbox.pending(10) if e.msgid == record.msgid)
    local = outbox.local_setlinfo(record.msgid)
    outbox.deliver(entry, "REF" + record.msgid, {"setlinfo": dict(local or {})}, local, r.side.clock.now())
    assert outbox.prune_delivered(keep=0) == 1
    _as_before_0021(r.side.db)
    return record.msgid, dict(entry.envelope)


def _as_before_0021(db: sqlite_utils.Database) -> None:
    for column in ("header", "attempts", "last_error"):
        db.execute(f"ALTER TABLE payments DROP COLUMN {column}")
    db.execute("DELETE FROM _migrations WHERE name = '0021_payment_rows'")
    db.close()


def _started(data: Path) -> None:
    """The terminal starts over the upgraded database (applying 0021 and rebuilding headers)."""
    term = build_terminal(load(DEFAULT_CONFIG), data, FixedClock())
    try:
        names = {row["name"] for row in term.db.query("SELECT name FROM _migrations")}
        assert "0021_payment_rows" in names
    finally:
        term.close()


def _refunded(r: Rig, msgid: str) -> dict[str, Any]:
    ended = r.saga.refunds().refund(msgid, Staff("c01", "cashier"), Staff("s01", "supervisor"), "returned")
    assert (ended.state, ended.reversal) == ("refunded", "2208")
    [row] = [dict(x) for x in r.side.db.query("SELECT infno, state, envelope FROM outbox")]
    assert (row["infno"], row["state"]) == ("2208", "pending")
    envelope = dict(json.loads(row["envelope"]))
    assert envelope["input"]["data"]["omsgid"] == msgid
    assert envelope_problem(envelope) == ""
    return envelope


def test_a_pruned_settlement_from_before_0021_is_reversed_on_a_header_rebuilt_from_the_terminal(
    tmp_path: Path,
) -> None:
    data, gateway = tmp_path / "data", tmp_path / "gateway.json"
    msgid, sent = _paid_then_pruned(data, gateway, registered=True)
    _started(data)
    envelope = _refunded(rig(data, gateway), msgid)
    header = {k: v for k, v in sent.items() if k not in ("input", "msgid", "infno", "inf_time", "sign_no")}
    assert {k: envelope[k] for k in header} == header, "the same terminal, areas and operator as the 2207"
    assert envelope["input"]["data"]["psn_no"] == sent["input"]["data"]["psn_no"]


def test_a_person_no_longer_held_still_gets_the_settlements_own_insured_place(tmp_path: Path) -> None:
    data, gateway = tmp_path / "data", tmp_path / "gateway.json"
    msgid, sent = _paid_then_pruned(data, gateway, registered=False)
    _started(data)
    envelope = _refunded(rig(data, gateway), msgid)
    assert envelope["insuplc_admdvs"] == sent["insuplc_admdvs"] != ""
    assert envelope["fixmedins_code"] == sent["fixmedins_code"]


def test_a_person_who_moved_insurance_after_the_settlement_keeps_the_place_it_was_settled_for(
    tmp_path: Path,
) -> None:
    data, gateway = tmp_path / "data", tmp_path / "gateway.json"
    msgid, sent = _paid_then_pruned(data, gateway, registered=True)
    db = sqlite_utils.Database(data / "medpay.sqlite")
    [place] = [row["insuplc_admdvs"] for row in db.query("SELECT insuplc_admdvs FROM persons")]
    assert place == sent["insuplc_admdvs"]
    db.execute("UPDATE persons SET insuplc_admdvs = '110105'")  # a gallery sync: now insured in Beijing
    db.conn.commit()
    db.close()
    _started(data)
    envelope = _refunded(rig(data, gateway), msgid)
    assert envelope["insuplc_admdvs"] == sent["insuplc_admdvs"] == "430302"  # the settlement's, not today's


def test_a_stored_result_naming_no_place_leaves_it_empty() -> None:
    local = {"trace": [{"layer": "policy", "text": "本地参保(430302): 按就医地政策 xt v1 修订1"}]}
    other = {"trace": [{"layer": "policy", "text": "异地就医: 参保地 110100 待遇按参保地政策 bj v1"}]}
    assert insured_place(json.dumps(local, ensure_ascii=False)) == "430302"
    assert insured_place(json.dumps(other, ensure_ascii=False)) == ""  # a prefecture only: not guessed
    assert insured_place(json.dumps({"trace": [{"layer": "lines", "text": "费用合计 1.00"}]})) == ""
    assert insured_place("{}") == "" and insured_place("not json") == ""
