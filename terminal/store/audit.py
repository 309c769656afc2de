"""Hash-chained audit log: each row's hash covers its content and the previous row's hash."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import sqlite_utils

GENESIS = "0" * 64
# The chain head (last seq and a 60-bit tag of its hash) is anchored in the counters table, written in
# the same transaction as the row: deleting the newest rows leaves a valid-looking chain otherwise.
HEAD_SEQ = "audit_head_seq"
HEAD_TAG = "audit_head_tag"


def _tag(digest: str) -> int:
    return int(digest[:15], 16)


def _row_hash(prev_hash: str, at: str, actor: str, action: str, subject: str, detail: str) -> str:
    material = json.dumps([prev_hash, at, actor, action, subject, detail], ensure_ascii=False)
    return hashlib.sha256(material.encode()).hexdigest()


def append(
    db: sqlite_utils.Database, at: datetime, actor: str, action: str, subject: str, detail: dict[str, Any]
) -> str:
    """Append one record (call inside the caller's transaction); returns its hash."""
    last = list(db.query("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1"))
    prev_hash = last[0]["hash"] if last else GENESIS
    at_text = at.isoformat()
    detail_text = json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)
    digest = _row_hash(prev_hash, at_text, actor, action, subject, detail_text)
    db.execute(
        "INSERT INTO audit (at, actor, action, subject, detail, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [at_text, actor, action, subject, detail_text, prev_hash, digest],
    )
    seq = next(iter(db.query("SELECT last_insert_rowid() AS seq")))["seq"]
    db.execute(
        "INSERT INTO counters (name, value) VALUES (?, ?), (?, ?)"
        " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        [HEAD_SEQ, seq, HEAD_TAG, _tag(digest)],
    )
    return digest


def verify(db: sqlite_utils.Database) -> list[str]:
    """Return a description of every broken link or edited row; empty when the chain is intact."""
    problems = []
    prev_hash = GENESIS
    expected_seq = None
    for row in db.query("SELECT * FROM audit ORDER BY seq"):
        if expected_seq is not None and row["seq"] != expected_seq:
            problems.append(f"rows {expected_seq}..{row['seq'] - 1} are missing")
        if row["prev_hash"] != prev_hash:
            problems.append(f"row {row['seq']}: chain broken (previous hash differs)")
        digest = _row_hash(
            row["prev_hash"], row["at"], row["actor"], row["action"], row["subject"], row["detail"]
        )
        if digest != row["hash"]:
            problems.append(f"row {row['seq']}: content edited (hash differs)")
        prev_hash = row["hash"]
        expected_seq = row["seq"] + 1
    problems.extend(_check_head(db, None if expected_seq is None else expected_seq - 1, prev_hash))
    return problems


def _check_head(db: sqlite_utils.Database, last_seq: int | None, last_hash: str) -> list[str]:
    anchor = {
        r["name"]: r["value"]
        for r in db.query("SELECT name, value FROM counters WHERE name IN (?, ?)", [HEAD_SEQ, HEAD_TAG])
    }
    if HEAD_SEQ not in anchor:
        return []  # a log written before the anchor existed; nothing to compare with
    head = int(anchor[HEAD_SEQ])
    if last_seq is None or last_seq < head:
        return [f"rows {(last_seq or 0) + 1}..{head} are missing (newest rows deleted)"]
    if last_seq > head:
        return [f"rows {head + 1}..{last_seq} were added outside the audit log"]
    if int(anchor.get(HEAD_TAG, -1)) != _tag(last_hash):
        return [f"row {head}: does not match the anchored chain head"]
    return []
