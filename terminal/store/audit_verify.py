"""What `medpay audit verify` finds in the keyed chain, each finding named by the tampering it shows.

Kinds: edit (a record's content changed, its MACs left), re-hash (records whose MACs were recomputed
without the device key), reorder (a record sits at another seq than it was written at), delete (rows
missing in the middle or at the start), truncate (the newest rows gone, the anchor moved back or
left behind), delete-all (no records, but the database shows there were some), append (records added
after the anchored head). The ledger's own kinds (amounts, envelope) are terminal/store/audit_check.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlite_utils

from terminal.store import audit_mac as audit
from terminal.store.audit_key import audit_key_for

EDIT = "edit"
REHASH = "re-hash"
REORDER = "reorder"
DELETE = "delete"
TRUNCATE = "truncate"
DELETE_ALL = "delete-all"
APPEND = "append"
# Reorder detection tries each failing record at every other failing seq; beyond this many, it is skipped.
REORDER_SEARCH_LIMIT = 300


@dataclass(frozen=True)
class Finding:
    """One thing wrong, with the kind of tampering it shows."""

    kind: str
    message: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.message}"


def chain_findings(db: sqlite_utils.Database) -> list[Finding]:
    """Every finding in the audit chain and its anchor; empty when intact."""
    key = audit_key_for(db)
    rows = [dict(r) for r in db.query("SELECT * FROM audit ORDER BY seq")]
    if not rows:
        return _empty(db)
    found: list[Finding] = []
    if rows[0]["seq"] != 1:
        found.append(Finding(DELETE, f"rows 1..{rows[0]['seq'] - 1} are missing (the oldest rows deleted)"))
    own = {r["seq"]: _body_ok(key, r, r["seq"]) for r in rows}
    links = {
        r["seq"]: audit.link_mac(key, r["prev_hash"], r.get("body_mac") or "") == r["hash"] for r in rows
    }
    moved = _moved(key, rows, own)
    rehashed: list[int] = []
    prev_hash, expected = audit.GENESIS, rows[0]["seq"]
    for row in rows:
        seq = row["seq"]
        if seq != expected:
            found.append(Finding(DELETE, f"rows {expected}..{seq - 1} are missing"))
        elif row["prev_hash"] != prev_hash and seq in links and links[seq] and seq not in moved:
            found.append(Finding(DELETE, f"row {seq}: chain broken (previous hash differs)"))
        if seq in moved:
            found.append(Finding(REORDER, f"row {seq} holds the record written as row {moved[seq]}"))
        elif not links[seq]:
            rehashed.append(seq)
        elif not own[seq]:
            found.append(Finding(EDIT, f"row {seq}: content edited (its MAC does not verify)"))
        prev_hash, expected = row["hash"], seq + 1
    found.extend(_runs(rehashed, rows))
    last = rows[-1]
    found.extend(
        _anchor(db, key, last["seq"], last["hash"], intact=bool(links[last["seq"]] and own[last["seq"]]))
    )
    return found


def _body_ok(key: bytes, row: dict[str, Any], seq: int) -> bool:
    mac = audit.body_mac(key, seq, row["at"], row["actor"], row["action"], row["subject"], row["detail"])
    return mac == row.get("body_mac")


def _moved(key: bytes, rows: list[dict[str, Any]], own: dict[int, bool]) -> dict[int, int]:
    """seq → the seq its content was written at, for records that verify only at another place."""
    failing = [r for r in rows if not own[r["seq"]]]
    if len(failing) < 2 or len(failing) > REORDER_SEARCH_LIMIT:
        return {}
    stored = {r["seq"]: r.get("body_mac") for r in failing}
    moved: dict[int, int] = {}
    for row in failing:
        for other in stored:
            if other == row["seq"]:
                continue
            mac = audit.body_mac(
                key, other, row["at"], row["actor"], row["action"], row["subject"], row["detail"]
            )
            # The whole row moved (its MAC with it), or only its content (the MAC stayed at its seq).
            if mac in (row.get("body_mac"), stored[other]):
                moved[row["seq"]] = other
                break
    return moved


def _runs(seqs: list[int], rows: list[dict[str, Any]]) -> list[Finding]:
    """Consecutive re-hashed records as one finding each, saying when plain SHA-256 was used."""
    by_seq = {r["seq"]: r for r in rows}
    found: list[Finding] = []
    start = 0
    for i in range(1, len(seqs) + 1):
        if i < len(seqs) and seqs[i] == seqs[i - 1] + 1:
            continue
        first, last = seqs[start], seqs[i - 1]
        plain = all(_plain(by_seq[s]) for s in seqs[start:i])
        how = "with plain SHA-256" if plain else "without the device key"
        span = f"row {first}" if first == last else f"rows {first}..{last}"
        found.append(Finding(REHASH, f"{span}: re-hashed {how} (the keyed MACs do not verify)"))
        start = i
    return found


def _plain(row: dict[str, Any]) -> bool:
    digest = audit._row_hash(
        row["prev_hash"], row["at"], row["actor"], row["action"], row["subject"], row["detail"]
    )
    return bool(digest == row["hash"])


def _anchor(
    db: sqlite_utils.Database, key: bytes, last_seq: int, last_hash: str, intact: bool
) -> list[Finding]:
    anchor = {
        r["name"]: int(r["value"])
        for r in db.query(
            "SELECT name, value FROM counters WHERE name IN (?, ?)", [audit.HEAD_SEQ, audit.HEAD_TAG]
        )
    }
    found: list[Finding] = []
    used = audit.highest_seq_used(db)
    if audit.HEAD_SEQ not in anchor:
        return [Finding(TRUNCATE, "the chain head anchor is missing (removed with the newest rows?)")]
    head = anchor[audit.HEAD_SEQ]
    if last_seq < head:
        found.append(Finding(TRUNCATE, f"rows {last_seq + 1}..{head} are missing (newest rows deleted)"))
    elif last_seq > head:
        found.append(Finding(APPEND, f"rows {head + 1}..{last_seq} were added outside the audit log"))
    elif anchor.get(audit.HEAD_TAG) != audit.head_tag(key, last_seq, last_hash):
        kind = TRUNCATE if intact else REHASH
        why = "newest rows deleted and the anchor moved back" if intact else "the head was re-hashed"
        found.append(Finding(kind, f"row {head}: does not match the anchored chain head ({why})"))
    if used > max(last_seq, head):
        found.append(Finding(TRUNCATE, f"rows up to {used} were written, the log ends at {last_seq}"))
    return found


def _empty(db: sqlite_utils.Database) -> list[Finding]:
    """An empty log is fine on a new terminal; not when anything shows records were written."""
    signs = []
    anchored = list(db.query("SELECT value FROM counters WHERE name = ?", [audit.HEAD_SEQ]))
    if anchored:
        signs.append(f"the anchor names row {anchored[0]['value']}")
    if audit.highest_seq_used(db):
        signs.append(f"rows up to {audit.highest_seq_used(db)} were written")
    for table in ("settlements", "outbox"):
        count = int(next(iter(db.query(f"SELECT COUNT(*) AS n FROM {table}")))["n"])
        if count:
            signs.append(f"{count} {table} rows exist")
    if not signs:
        return []
    return [Finding(DELETE_ALL, "the audit log is empty but " + "; ".join(signs) + " (every record deleted)")]
