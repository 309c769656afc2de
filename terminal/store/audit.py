"""Keyed audit chain: each record's MAC is an HMAC-SHA256 under the device key, chained to the previous.

A record carries two MACs under the audit key (terminal/store/audit_key.py): `body_mac` over its sequence
number and content, and `hash`, the link, over the previous record's link and its own body MAC. The seq
inside the body MAC makes a moved record detectable; the link makes a deleted or inserted one
detectable. The chain head (last seq and a 60-bit keyed tag of its link) is anchored in the counters
table, written in the same transaction as the record; the head (seq and link MAC) is what the sync
signs and sends upstream (terminal/pipeline/sync.py), which alone catches an attacker holding the key.
What `medpay audit verify` reports, by kind, is terminal/store/audit_verify.py.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlite_utils

from terminal.domain import AuditHead
from terminal.store.audit_key import audit_key_for

# The formulas live in audit_mac (shared with the verifier without an import cycle); re-exported here.
from terminal.store.audit_mac import (
    GENESIS,
    HEAD_SEQ,
    HEAD_TAG,
    _row_hash,
    body_mac,
    head_tag,
    highest_seq_used,
    link_mac,
)

__all__ = [
    "GENESIS",
    "HEAD_SEQ",
    "HEAD_TAG",
    "_row_hash",
    "anchor",
    "append",
    "body_mac",
    "head",
    "head_tag",
    "highest_seq_used",
    "link_mac",
    "mac_at",
    "verify",
]


def append(
    db: sqlite_utils.Database, at: datetime, actor: str, action: str, subject: str, detail: dict[str, Any]
) -> str:
    """Append one record (call inside the caller's transaction); returns its link MAC."""
    key = audit_key_for(db)
    last = list(db.query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"))
    prev_hash = last[0]["hash"] if last else GENESIS
    seq = max(int(last[0]["seq"]) if last else 0, highest_seq_used(db)) + 1
    at_text = at.isoformat()
    detail_text = json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)
    body = body_mac(key, seq, at_text, actor, action, subject, detail_text)
    link = link_mac(key, prev_hash, body)
    db.execute(
        "INSERT INTO audit (seq, at, actor, action, subject, detail, prev_hash, hash, body_mac)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [seq, at_text, actor, action, subject, detail_text, prev_hash, link, body],
    )
    anchor(db, key, seq, link)
    return link


def anchor(db: sqlite_utils.Database, key: bytes, seq: int, link: str) -> None:
    """Point the anchor at a head (the caller's transaction)."""
    db.execute(
        "INSERT INTO counters (name, value) VALUES (?, ?), (?, ?)"
        " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        [HEAD_SEQ, seq, HEAD_TAG, head_tag(key, seq, link)],
    )


def head(db: sqlite_utils.Database) -> AuditHead:
    """The chain head: the last record's seq and link MAC (seq 0 and the genesis value when empty)."""
    rows = list(db.query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"))
    if not rows:
        return AuditHead(0, GENESIS)
    return AuditHead(int(rows[0]["seq"]), str(rows[0]["hash"]))


def mac_at(db: sqlite_utils.Database, seq: int) -> str | None:
    """The link MAC of the record at seq (GENESIS at 0), None when there is no such record."""
    if seq == 0:
        return GENESIS
    rows = list(db.query("SELECT hash FROM audit WHERE seq = ?", [seq]))
    return str(rows[0]["hash"]) if rows else None


def verify(db: sqlite_utils.Database) -> list[str]:
    """One line per finding, each naming its kind; empty when the chain is intact."""
    from terminal.store.audit_verify import chain_findings

    return [str(finding) for finding in chain_findings(db)]
