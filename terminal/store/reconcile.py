"""Differences between the local estimate and the binding upstream result, for technicians."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlite_utils

from terminal.settlement.result import SETTLED_AMOUNTS

# The setlinfo amounts a patient or a fund pays; identifiers and timestamps always differ and are not kept.
MONEY_FIELDS = SETTLED_AMOUNTS


def _amount(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def differences(local: Mapping[str, Any], upstream: Any) -> list[tuple[str, str, str]]:
    """(field, local, upstream) for every money field of setlinfo whose amounts differ."""
    theirs: Mapping[str, Any] = upstream if isinstance(upstream, Mapping) else {}
    out = []
    for name in MONEY_FIELDS:
        mine, other = local.get(name), theirs.get(name)
        if mine is None and other is None:
            continue
        a, b = _amount(mine), _amount(other)
        if a is None or b is None or a != b:
            out.append((name, str(mine), str(other)))
    return out


def local_setlinfo(db: sqlite_utils.Database, msgid: str) -> dict[str, Any] | None:
    """The setlinfo the terminal estimated for a settlement, None when the msgid is not a settlement."""
    rows = list(db.query("SELECT result FROM settlements WHERE msgid = ?", [msgid]))
    if not rows:
        return None
    info = json.loads(rows[0]["result"]).get("setlinfo")
    return dict(info) if isinstance(info, dict) else None


def report(db: sqlite_utils.Database, limit: int = 100) -> list[dict[str, Any]]:
    """The newest recorded differences, for `medpay reconcile` and the technician page."""
    rows = db.query(
        "SELECT msgid, field, local, upstream, recorded_at FROM reconcile ORDER BY id DESC LIMIT ?", [limit]
    )
    return [dict(r) for r in rows]


def difference_count(db: sqlite_utils.Database) -> int:
    """How many differences from the binding upstream result are recorded."""
    return int(next(iter(db.query("SELECT COUNT(*) AS n FROM reconcile")))["n"])


def local_totals(db: sqlite_utils.Database, day: str) -> dict[str, str]:
    """3201 input totals for one day (yyyy-mm-dd) from the ledger's estimates, of settlements that stand.

    A settlement reversed (2208), refused by the centre or voided before it was sent is not the centre's
    either: counting it made the day's totals disagree after every refund.
    """
    medfee = fund = acct = Decimal("0.00")
    count = 0
    standing = "SELECT result FROM settlements WHERE substr(setl_time, 1, 10) = ? AND reversed_at IS NULL"
    for row in db.query(standing, [day]):
        info = json.loads(row["result"]).get("setlinfo", {})
        medfee += Decimal(str(info.get("medfee_sumamt", "0")))
        fund += Decimal(str(info.get("fund_pay_sumamt", "0")))
        acct += Decimal(str(info.get("acct_pay", "0")))
        count += 1
    return {
        "stmt_begndate": day,
        "stmt_enddate": day,
        "medfee_sumamt": str(medfee),
        "fund_pay_sumamt": str(fund),
        "acct_pay": str(acct),
        "fixmedins_setl_cnt": str(count),
    }
