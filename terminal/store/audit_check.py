"""The ledger cross-checked against the audit log: every settlement and outbox row has its record.

The keyed chain (store/audit.py) proves the audit log was not edited; this proves the money tables agree
with it: a settlement without its audit record, or whose amounts differ from it (each settle record
carries digests of the row's amounts and of its outbox envelope; records older than the keying are
covered by the re-keying record's digests), an outbox entry with no
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
from terminal.store.audit_verify import Finding, chain_findings
from terminal.store.ledger_digest import amounts_digest, envelope_digest

# Settlement columns the audit record of a `settle` repeats (and the record's own key for each).
AUDITED_AMOUNTS = ("medfee_sumamt", "psn_part_amt")
# Outbox states whose reaching is audited, and by which action.
AUDITED_STATES = {"delivered": "delivered", "refused": "refused", "voided": "void"}
AMOUNTS = "amounts"  # a settlement's amounts changed after they were audited
ENVELOPE = "envelope"  # an outbox envelope changed after it was audited
LEDGER = "ledger"  # a row without its record, or a record without its row


def verify_all(db: sqlite_utils.Database) -> list[str]:
    """The audit chain, then the ledger against it, one line per finding naming its kind; [] when intact."""
    return [str(finding) for finding in all_findings(db)]


def all_findings(db: sqlite_utils.Database) -> list[Finding]:
    """The chain's findings, then the ledger's."""
    try:
        chain = [Finding(f.kind, f"audit log: {f.message}") for f in chain_findings(db)]
    except StoreError as exc:
        chain = [Finding("unreadable", f"audit log cannot be read: {exc}")]
    return chain + ledger_findings(db)


def cross_check(db: sqlite_utils.Database) -> list[str]:
    """Settlements and outbox rows against the audit records; one line per disagreement."""
    return [finding.message for finding in ledger_findings(db)]


def ledger_findings(db: sqlite_utils.Database) -> list[Finding]:
    """Settlements and outbox rows against the audit records, each finding with its kind."""
    try:
        records = _audit_records(db)
    except StoreError as exc:
        return [Finding("unreadable", f"audit log cannot be read, nothing cross-checked: {exc}")]
    baseline = _rekey_baseline(records)
    problems: list[str] = []
    found: list[Finding] = []
    try:
        settlements = list(db.query("SELECT * FROM settlements ORDER BY rowid"))
    except StoreError as exc:
        problems.append(f"settlements cannot be read: {exc}")
        settlements = []
    settled = {str(row["msgid"]) for row in settlements}
    for row in settlements:
        msgid = str(row["msgid"])
        for kind, text in _settlement(row, records.get(("settle", msgid)), baseline.get(msgid)):
            problems.append(text)
            found.append(Finding(kind, text))
    try:
        outbox = list(db.query("SELECT seq, msgid, infno, state, envelope FROM outbox ORDER BY seq"))
    except StoreError as exc:
        problems.append(f"outbox cannot be read: {exc}")
        outbox = []
    queued = {str(row["msgid"]) for row in outbox}
    for row in outbox:
        msgid, state = str(row["msgid"]), str(row["state"])
        audited = _audited_envelope(records.get(("settle", msgid)), baseline.get(msgid))
        if audited and envelope_digest(str(row["envelope"])) != audited:
            text = f"outbox entry {row['seq']} ({msgid}): envelope changed since it was audited"
            problems.append(text)
            found.append(Finding(ENVELOPE, text))
        # A 2208 (a failed payment's or a refund's reversal) names its settlement inside, not as its msgid.
        reversal = str(row["infno"]) == INFNO_REVERSE
        if msgid not in settled and not reversal and not _unread(problems, "settlements"):
            problems.append(f"outbox entry {row['seq']} ({msgid}) has no settlement")
        action = AUDITED_STATES.get(state)
        if action is not None and (action, msgid) not in records:
            problems.append(f"outbox entry {row['seq']} ({msgid}) is {state} without an audit record")
    if not _unread(problems, "outbox"):
        # A delivered entry may have been pruned (OutboxStore.prune_delivered): its delivery is audited.
        pruned = {msgid for msgid in settled - queued if ("delivered", msgid) in records}
        missing = sorted(settled - queued - pruned)
        problems.extend(f"settlement {msgid} has no outbox entry" for msgid in missing)
    for action, msgid in sorted(records):
        if action == "settle" and msgid not in settled and not _unread(problems, "settlements"):
            problems.append(f"audit records settlement {msgid}, the ledger has no such row")
    kinds = {f.message: f.kind for f in found}
    return [Finding(kinds.get(p, LEDGER), p) for p in problems]


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


def _rekey_baseline(records: dict[tuple[str, str], dict[str, Any]]) -> dict[str, list[str]]:
    """msgid → [amounts, envelope] digests the re-keying (migration 0017) recorded for older settlements."""
    ledger = records.get(("audit-rekey", "audit"), {}).get("ledger")
    return {str(k): list(v) for k, v in ledger.items()} if isinstance(ledger, dict) else {}


def _audited_envelope(record: dict[str, Any] | None, baseline: list[str] | None) -> str:
    if record is not None and record.get("envelope_digest"):
        return str(record["envelope_digest"])
    return baseline[1] if baseline else ""


def _settlement(
    row: dict[str, Any], record: dict[str, Any] | None, baseline: list[str] | None
) -> Iterator[tuple[str, str]]:
    msgid, bill = row["msgid"], row["chrg_bchno"]
    if record is None:
        yield LEDGER, f"settlement {msgid} (bill {bill}) has no audit record"
        return
    if record.get("chrg_bchno") != bill:
        yield (
            LEDGER,
            f"settlement {msgid}: bill {bill} in the ledger, {record.get('chrg_bchno')} in the audit log",
        )
    if record.get("_subject") != row["psn_no"]:
        yield (
            LEDGER,
            f"settlement {msgid}: person {row['psn_no']} in the ledger, {record.get('_subject')} audited",
        )
    named = False
    for name in AUDITED_AMOUNTS:
        if not _same_amount(row[name], record.get(name)):
            named = True
            yield (
                AMOUNTS,
                f"settlement {msgid}: {name} {row[name]} in the ledger, {record.get(name)} in the audit log",
            )
    audited = record.get("amounts_digest") or (baseline[0] if baseline else "")
    digest = amounts_digest(
        str(row["medfee_sumamt"]), str(row["fund_pay_sumamt"]), str(row["psn_part_amt"]), str(row["result"])
    )
    if audited and digest != audited and not named:
        yield AMOUNTS, f"settlement {msgid}: amounts or result changed since they were audited"
    if "offline" in record and bool(record["offline"]) != bool(row["offline"]):
        yield (
            LEDGER,
            f"settlement {msgid}: offline {bool(row['offline'])} in the ledger, {record['offline']} audited",
        )


def _same_amount(ledger: Any, audited: Any) -> bool:
    try:
        return Decimal(str(ledger)) == Decimal(str(audited))
    except InvalidOperation:
        return False
