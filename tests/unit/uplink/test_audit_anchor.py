"""The audit chain head is anchored: deleting the newest rows is detected, not just middle ones."""

from __future__ import annotations

from pathlib import Path

from terminal.store import audit
from terminal.store.db import open_db
from tests.fakes import FixedClock


def test_deleting_the_last_row_is_detected(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    for i in range(4):
        with db.atomic():
            audit.append(db, FixedClock().now(), "tech", "note", f"s{i}", {"i": i})
    assert audit.verify(db) == []
    db.execute("DELETE FROM audit WHERE seq = 4")
    db.conn.commit()
    assert any("newest rows deleted" in p for p in audit.verify(db))
    db.close()


def test_emptying_the_log_is_detected(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    with db.atomic():
        audit.append(db, FixedClock().now(), "tech", "note", "s", {})
    db.execute("DELETE FROM audit")
    db.conn.commit()
    assert audit.verify(db) != []
    db.close()


def test_replacing_the_last_row_with_a_rehashed_one_is_detected(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    for i in range(3):
        with db.atomic():
            audit.append(db, FixedClock().now(), "tech", "note", f"s{i}", {"i": i})
    prev = next(iter(db.query("SELECT hash FROM audit WHERE seq = 2")))["hash"]
    db.execute("DELETE FROM audit WHERE seq = 3")
    forged = audit._row_hash(prev, "2025-06-03T09:30:00+08:00", "tech", "note", "forged", "{}")
    db.execute(
        "INSERT INTO audit (seq, at, actor, action, subject, detail, prev_hash, hash)"
        " VALUES (3, '2025-06-03T09:30:00+08:00', 'tech', 'note', 'forged', '{}', ?, ?)",
        [prev, forged],
    )
    db.conn.commit()
    assert any("anchored chain head" in p for p in audit.verify(db))
    db.close()
