"""The 2208 that undoes a settlement the centre has (or may have) committed, queued behind its 2207."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlite_utils

from terminal.domain import INFNO_REVERSE
from terminal.store import audit
from terminal.store.db import immediate


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def next_msgid(db: sqlite_utils.Database, prefix: str, at: datetime) -> str:
    """A new msgid: prefix + yyyyMMddHHmmss + this terminal's slot digit + a 3-digit sequence.

    The national layout gives the institution one 4-digit sequence per second; several kiosks of one
    institution each count on their own, so the first digit is the terminal's `[terminal] msgid_slot`
    (distinct per kiosk): two kiosks never mint the same msgid, which the upstream and the payment
    gateway (out_trade_no) both treat as the same message. The sequence wraps at 1000 a second; the
    outbox keeps them unique.
    """
    with immediate(db):
        db.execute(
            "INSERT INTO counters (name, value) VALUES ('msgid', 1)"
            " ON CONFLICT(name) DO UPDATE SET value = value + 1"
        )
        value = next(iter(db.query("SELECT value FROM counters WHERE name = 'msgid'")))["value"]
        slots = list(db.query("SELECT value FROM counters WHERE name = 'msgid_slot'"))
    slot = int(slots[0]["value"]) if slots else 0
    return f"{prefix}{at:%Y%m%d%H%M%S}{slot}{int(value) % 1000:03d}"


def set_msgid_slot(db: sqlite_utils.Database, slot: int) -> None:
    """Record this terminal's msgid slot (written only when it changed)."""
    rows = list(db.query("SELECT value FROM counters WHERE name = 'msgid_slot'"))
    if rows and int(rows[0]["value"]) == slot:
        return
    with immediate(db):
        db.execute(
            "INSERT INTO counters (name, value) VALUES ('msgid_slot', ?)"
            " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            [slot],
        )


def queue_reversal(
    db: sqlite_utils.Database,
    omsgid: str,
    psn_no: str,
    msgid: str,
    envelope: Mapping[str, Any],
    at: datetime,
    actor: str = "terminal",
) -> None:
    """Inside the caller's transaction: a 2208 for `omsgid` queued behind it (same person, so in order)."""
    db.execute(
        "INSERT INTO outbox (msgid, infno, envelope, created_at, psn_no, state)"
        " VALUES (?, ?, ?, ?, ?, 'pending')",
        [msgid, INFNO_REVERSE, _dumps(envelope), at.isoformat(), psn_no],
    )
    audit.append(db, at, actor, "reversal_queued", omsgid, {"msgid": msgid, "infno": INFNO_REVERSE})


def reversal_from(
    template: Mapping[str, Any], msgid: str, omsgid: str, psn_no: str, at: datetime
) -> dict[str, Any]:
    """A 2208 envelope built on a queued 2207's header (the same terminal, areas and operator)."""
    return {
        **template,
        "infno": INFNO_REVERSE,
        "msgid": msgid,
        "inf_time": at.strftime("%Y-%m-%d %H:%M:%S"),
        "sign_no": "",
        "input": {"data": {"psn_no": psn_no, "omsgid": omsgid}},
    }


def compensate_voided(db: sqlite_utils.Database, msgid: str, at: datetime) -> str | None:
    """Inside deliver's transaction: a voided 2207 the centre committed anyway (it was in flight) gets
    its 2208; returns the reversal's msgid, None when the entry was not voided."""
    rows = list(db.query("SELECT state, envelope, psn_no FROM outbox WHERE msgid = ?", [msgid]))
    if not rows or rows[0]["state"] != "voided":
        return None
    template = dict(json.loads(rows[0]["envelope"]))
    psn_no = str(rows[0]["psn_no"])
    reversal = next_msgid(db, str(template.get("fixmedins_code", "")), at)
    queue_reversal(
        db, msgid, psn_no, reversal, reversal_from(template, reversal, msgid, psn_no, at), at, "uplink"
    )
    return reversal
