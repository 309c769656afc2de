"""The ledger cross-checked against the audit log: every settlement and outbox row has its record.

The hash chain (store/audit.py) proves the audit log was not edited; this proves the money tables agree
with it: a settlement without its audit record, or whose amounts differ from it, an outbox entry with no
settlement or with a delivery or refusal nobody audited, an audited settlement the ledger lost. A table
that cannot be read at all (a damaged file) is reported as such, never taken for an empty one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlite_utils

from terminal.domain import INFNO_REVERSE
from terminal.errors import StoreError
from terminal.store import audit

# Settlement columns the audit record of a `settle` repeats (and the record's own key for each).
AUDITED_AMOUNTS = ("medfee_sumamt", "psn_part_amt")
# Outbox states whose reaching is audited, and by which action.
AUDITED_STATES = {"delivered": "delivered", "refused": "refused", "voided": "void"}


def verify_all(db: sqlite_utils.Database) -> list[str]:
    """The audit chain, then the ledger against it; empty when everything agrees."""
    try:
        problems = [f"audit log: {p}" for p in audit.verify(db)]
    except StoreError as exc:
        problems = [f"audit log cannot be read: {exc}"]
    return problems + cross_check(db)


def cross_check(db: sqlite_utils.Database) -> list[str]:
    """Settlements and outbox rows against the audit records; one line per disagreement."""
    try:
        records = _audit_records(db)
    except StoreError as exc:
        return [f"audit log cannot be read, nothing cross-checked: {exc}"]
    problems: list[str] = []
    try:
        settlements = list(db.query("SELECT * FROM settlements ORDER BY rowid"))
    except StoreError as exc:
        problems.append(f"settlements cannot be read: {exc}")
        settlements = []
    settled = {str(row["msgid"]) for row in settlements}
    for row in settlements:
        problems.extend(_settlement(row, records.get(("settle", str(row["msgid"])))))
    try:
        outbox = list(db.query("SELECT seq, msgid, infno, state FROM outbox ORDER BY seq"))
    except StoreError as exc:
        problems.append(f"outbox cannot be read: {exc}")
        outbox = []
    queued = {str(row["msgid"]) for row in outbox}
    for row in outbox:
        msgid, state = str(row["msgid"]), str(row["state"])
        # A 2208 (a failed payment's or a refund's reversal) names its settlement inside, not as its msgid.
        reversal = str(row["infno"]) == INFNO_REVERSE
        if msgid not in settled and not reversal and not _unread(problems, "settlements"):
            problems.append(f"outbox entry {row['seq']} ({msgid}) has no settlement")
        action = AUDITED_STATES.get(state)
        if action is not None and (action, msgid) not in records:
            problems.append(f"outbox entry {row['seq']} ({msgid}) is {state} without an audit record")
    if not _unread(problems, "outbox"):
        problems.extend(f"settlement {msgid} has no outbox entry" for msgid in sorted(settled - queued))
    for action, msgid in sorted(records):
        if action == "settle" and msgid not in settled and not _unread(problems, "settlements"):
            problems.append(f"audit records settlement {msgid}, the ledger has no such row")
    return problems


def _unread(problems: list[str], table: str) -> bool:
    return any(p.startswith(f"{table} cannot be read") for p in problems)


def _audit_records(db: sqlite_utils.Database) -> dict[tuple[str, str], dict[str, Any]]:
    """(action, msgid) → detail of the audit records that name a msgid."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for row in db.query("SELECT action, subject, detail FROM audit ORDER BY seq"):
        detail = _detail(row["detail"])
        msgid = detail.get("msgid") if row["action"] == "settle" else row["subject"]
        if msgid:
            found[(str(row["action"]), str(msgid))] = {**detail, "_subject": row["subject"]}
    return found


def _detail(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(str(text))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _settlement(row: dict[str, Any], record: dict[str, Any] | None) -> Iterator[str]:
    msgid, bill = row["msgid"], row["chrg_bchno"]
    if record is None:
        yield f"settlement {msgid} (bill {bill}) has no audit record"
        return
    if record.get("chrg_bchno") != bill:
        yield f"settlement {msgid}: bill {bill} in the ledger, {record.get('chrg_bchno')} in the audit log"
    if record.get("_subject") != row["psn_no"]:
        yield f"settlement {msgid}: person {row['psn_no']} in the ledger, {record.get('_subject')} audited"
    for name in AUDITED_AMOUNTS:
        if not _same_amount(row[name], record.get(name)):
            yield f"settlement {msgid}: {name} {row[name]} in the ledger, {record.get(name)} in the audit log"
    if "offline" in record and bool(record["offline"]) != bool(row["offline"]):
        yield f"settlement {msgid}: offline {bool(row['offline'])} in the ledger, {record['offline']} audited"


def _same_amount(ledger: Any, audited: Any) -> bool:
    try:
        return Decimal(str(ledger)) == Decimal(str(audited))
    except InvalidOperation:
        return False
