"""Scripted attacks on the stored audit chain, the way issue 17's "Why" forged the plain one.

Two attackers: one who can edit the database but not read keys/audit.key (recomputes the chain with
the plain SHA-256 formula, as the old chain used), and one who holds the key (recomputes real MACs).
"""

from __future__ import annotations

import sqlite_utils

from terminal.store import audit
from terminal.store.audit_key import audit_key_for


def _rows(db: sqlite_utils.Database) -> list[dict[str, object]]:
    return [dict(r) for r in db.query("SELECT * FROM audit ORDER BY seq")]


def rehash_plain(db: sqlite_utils.Database, start: int) -> None:
    """Recompute every link from `start` with plain SHA-256 and re-anchor the head (no key)."""
    rows = _rows(db)
    prev = audit.GENESIS
    for row in rows:
        seq = int(str(row["seq"]))
        if seq >= start:
            digest = audit._row_hash(
                prev, str(row["at"]), str(row["actor"]), str(row["action"]),
                str(row["subject"]), str(row["detail"]),
            )  # fmt: skip
            db.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", [prev, digest, seq])
            prev = digest
        else:
            prev = str(row["hash"])
    last = int(str(rows[-1]["seq"]))
    set_anchor(db, last, int(prev[:15], 16))


def rekey_with_the_key(db: sqlite_utils.Database) -> None:
    """What a key holder does after tampering: real MACs for every row, the anchor moved to the last."""
    key = audit_key_for(db)
    prev = audit.GENESIS
    for row in _rows(db):
        seq = int(str(row["seq"]))
        body = audit.body_mac(
            key, seq, str(row["at"]), str(row["actor"]), str(row["action"]),
            str(row["subject"]), str(row["detail"]),
        )  # fmt: skip
        link = audit.link_mac(key, prev, body)
        db.execute(
            "UPDATE audit SET prev_hash = ?, hash = ?, body_mac = ? WHERE seq = ?", [prev, link, body, seq]
        )
        prev = link
    last = int(str(_rows(db)[-1]["seq"]))
    audit.anchor(db, key, last, prev)
    db.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'audit'", [last])


def set_anchor(db: sqlite_utils.Database, seq: int, tag: int) -> None:
    """Overwrite both anchor counters."""
    db.execute("UPDATE counters SET value = ? WHERE name = ?", [seq, audit.HEAD_SEQ])
    db.execute("UPDATE counters SET value = ? WHERE name = ?", [tag, audit.HEAD_TAG])


def delete_newest(db: sqlite_utils.Database, count: int) -> None:
    """Delete the newest rows, move the anchor (and AUTOINCREMENT's record) back to the new last row."""
    last = int(str(_rows(db)[-1]["seq"]))
    db.execute("DELETE FROM audit WHERE seq > ?", [last - count])
    keep = _rows(db)[-1]
    seq = int(str(keep["seq"]))
    set_anchor(db, seq, int(str(keep["hash"])[:15], 16))
    db.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'audit'", [seq])


def delete_all(db: sqlite_utils.Database) -> None:
    """Every record, both anchor counters and AUTOINCREMENT's record of the audit table."""
    db.execute("DELETE FROM audit")
    db.execute("DELETE FROM counters WHERE name IN (?, ?)", [audit.HEAD_SEQ, audit.HEAD_TAG])
    db.execute("DELETE FROM sqlite_sequence WHERE name = 'audit'")


def swap_contents(db: sqlite_utils.Database, a: int, b: int) -> None:
    """Exchange two records' contents (at, actor, action, subject, detail), keeping their seqs."""
    fields = ("at", "actor", "action", "subject", "detail")
    rows = {int(str(r["seq"])): r for r in _rows(db)}
    for here, there in ((a, b), (b, a)):
        values = [rows[there][f] for f in fields]
        db.execute(f"UPDATE audit SET {', '.join(f'{f} = ?' for f in fields)} WHERE seq = ?", [*values, here])
