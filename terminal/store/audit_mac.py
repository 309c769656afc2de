"""The audit chain's formulas: the plain chain's SHA-256 (before keying) and the keyed MACs."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import sqlite_utils

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


def highest_seq_used(db: sqlite_utils.Database) -> int:
    """The highest seq ever given to an audit record, deleted or not (AUTOINCREMENT's record), 0 if none."""
    rows = list(db.query("SELECT seq FROM sqlite_sequence WHERE name = 'audit'"))
    return int(rows[0]["seq"]) if rows else 0
