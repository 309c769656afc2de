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

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

import sqlite_utils

from terminal.domain import AuditHead
from terminal.store.audit_key import audit_key_for

GENESIS = "0" * 64
HEAD_SEQ = "audit_head_seq"
HEAD_TAG = "audit_head_tag"


def _row_hash(prev_hash: str, at: str, actor: str, action: str, subject: str, detail: str) -> str:
    """The chain's formula before it was keyed (plain SHA-256): re-keying checks old chains with it."""
    material = json.dumps([prev_hash, at, actor, action, subject, detail], ensure_ascii=False)
    return hashlib.sha256(material.encode()).hexdigest()


def _mac(key: bytes, label: str, parts: list[Any]) -> str:
    material = json.dumps([label, *parts], ensure_ascii=False)
    return hmac.new(key, material.encode(), hashlib.sha256).hexdigest()


def body_mac(key: bytes, seq: int, at: str, actor: str, action: str, subject: str, detail: str) -> str:
    """The MAC over one record's place in the chain and its content."""
    return _mac(key, "audit-body/2", [seq, at, actor, action, subject, detail])


def link_mac(key: bytes, prev_hash: str, body: str) -> str:
    """The chain link: the previous record's link and this record's body MAC."""
    return _mac(key, "audit-link/2", [prev_hash, body])


def head_tag(key: bytes, seq: int, link: str) -> int:
    """The anchor's 60-bit keyed tag of the head: moving the anchor back needs the key."""
    return int(_mac(key, "audit-head/2", [seq, link])[:15], 16)


def append(
    db: sqlite_utils.Database, at: datetime, actor: str, action: str, subject: str, detail: dict[str, Any]
) -> str:
    """Append one record (call inside the caller's transaction); returns its link MAC."""
    key = audit_key_for(db)
    last = list(db.query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"))
    prev_hash = last[0]["hash"] if last else GENESIS
    seq = max(int(last[0]["seq"]) if last else 0, _sequence(db)) + 1
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


def _sequence(db: sqlite_utils.Database) -> int:
    """The highest seq the audit table ever handed out (AUTOINCREMENT's record), 0 when none."""
    rows = list(db.query("SELECT seq FROM sqlite_sequence WHERE name = 'audit'"))
    return int(rows[0]["seq"]) if rows else 0


def highest_seq_used(db: sqlite_utils.Database) -> int:
    """The highest seq ever given to an audit record, deleted or not."""
    return _sequence(db)


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
