"""Migration 0017: the plain SHA-256 audit chain re-keyed under the device key, audited as such.

Every existing record gets its MACs recomputed under the audit key from the first record on. What the
old chain looked like before (intact, or its problems) and the digests of every settlement's amounts
and outbox envelope at that moment go into one `audit-rekey` record, so a re-keying can never quietly
launder an earlier edit: it is the first record the keyed chain vouches for.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from terminal.store import audit
from terminal.store.audit_key import audit_key_for
from terminal.store.ledger_digest import amounts_digest, envelope_digest

LEGACY_PROBLEMS_KEPT = 20


def rekey(db: sqlite_utils.Database) -> None:
    """Add the body MAC column and re-MAC every record in order; then record the re-keying."""
    db.execute("ALTER TABLE audit ADD COLUMN body_mac TEXT NOT NULL DEFAULT ''")
    rows = [dict(r) for r in db.query("SELECT * FROM audit ORDER BY seq")]
    if not rows:
        return
    before = legacy_problems(db, rows)
    key = audit_key_for(db)
    prev = audit.GENESIS
    for row in rows:
        body = audit.body_mac(
            key, row["seq"], row["at"], row["actor"], row["action"], row["subject"], row["detail"]
        )
        link = audit.link_mac(key, prev, body)
        db.execute(
            "UPDATE audit SET prev_hash = ?, hash = ?, body_mac = ? WHERE seq = ?",
            [prev, link, body, row["seq"]],
        )
        prev = link
    detail: dict[str, Any] = {
        "rows": len(rows),
        "previous_chain": before[:LEGACY_PROBLEMS_KEPT] if before else "intact",
        "ledger": ledger_digests(db),
    }
    audit.append(db, datetime.now(UTC), "terminal", "audit-rekey", "audit", detail)


def legacy_problems(db: sqlite_utils.Database, rows: list[dict[str, Any]]) -> list[str]:
    """The plain chain's own check (before keying): broken links, edited rows, a moved anchor."""
    problems: list[str] = []
    prev, expected = audit.GENESIS, None
    for row in rows:
        if expected is not None and row["seq"] != expected:
            problems.append(f"rows {expected}..{row['seq'] - 1} are missing")
        if row["prev_hash"] != prev:
            problems.append(f"row {row['seq']}: chain broken")
        digest = audit._row_hash(
            row["prev_hash"], row["at"], row["actor"], row["action"], row["subject"], row["detail"]
        )
        if digest != row["hash"]:
            problems.append(f"row {row['seq']}: content edited")
        prev, expected = row["hash"], row["seq"] + 1
    anchor = {
        r["name"]: int(r["value"])
        for r in db.query(
            "SELECT name, value FROM counters WHERE name IN (?, ?)", [audit.HEAD_SEQ, audit.HEAD_TAG]
        )
    }
    last = rows[-1]
    if audit.HEAD_SEQ in anchor and (
        anchor[audit.HEAD_SEQ] != last["seq"] or anchor.get(audit.HEAD_TAG) != int(prev[:15], 16)
    ):
        problems.append(f"the anchor names row {anchor[audit.HEAD_SEQ]}, the log ends at {last['seq']}")
    return problems


def ledger_digests(db: sqlite_utils.Database) -> dict[str, list[str]]:
    """msgid → [amounts digest, envelope digest ('' without an outbox entry)] for every settlement."""
    envelopes = {str(r["msgid"]): str(r["envelope"]) for r in db.query("SELECT msgid, envelope FROM outbox")}
    found: dict[str, list[str]] = {}
    for row in db.query(
        "SELECT msgid, medfee_sumamt, fund_pay_sumamt, psn_part_amt, result FROM settlements"
    ):
        msgid = str(row["msgid"])
        amounts = amounts_digest(
            str(row["medfee_sumamt"]),
            str(row["fund_pay_sumamt"]),
            str(row["psn_part_amt"]),
            str(row["result"]),
        )
        envelope = envelopes.get(msgid)
        found[msgid] = [amounts, envelope_digest(envelope) if envelope is not None else ""]
    return found
