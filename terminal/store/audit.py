"""Hash-chained audit log: each row's hash covers its content and the previous row's hash."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import sqlite_utils

GENESIS = "0" * 64


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
    return problems
