"""Migration 0017 re-keys a plain SHA-256 chain from its first record and audits the re-keying."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlite_utils

from terminal.store import audit
from terminal.store import db as store_db
from terminal.store.audit_check import verify_all
from terminal.store.audit_key import audit_key_path


def _legacy_folder(folder: Path, monkeypatch: pytest.MonkeyPatch, rows: int, edit: bool = False) -> None:
    """A data folder as it was before 0017: plain SHA-256 links, the anchor's untagged 60 bits."""
    before = [m for m in store_db.MIGRATIONS if m[0] < "0017"]
    with monkeypatch.context() as patch:
        patch.setattr(store_db, "MIGRATIONS", before)
        db = store_db.open_db(folder)
    prev = audit.GENESIS
    for i in range(1, rows + 1):
        at, detail = datetime(2025, 6, 3, 9, i, tzinfo=UTC).isoformat(), json.dumps({"i": i})
        digest = audit._row_hash(prev, at, "tech", "note", f"s{i}", detail)
        db.execute(
            "INSERT INTO audit (seq, at, actor, action, subject, detail, prev_hash, hash)"
            " VALUES (?, ?, 'tech', 'note', ?, ?, ?, ?)",
            [i, at, f"s{i}", detail, prev, digest],
        )
        prev = digest
    db.execute(
        "INSERT INTO counters (name, value) VALUES (?, ?), (?, ?)",
        [audit.HEAD_SEQ, rows, audit.HEAD_TAG, int(prev[:15], 16)],
    )
    if edit:
        db.execute("UPDATE audit SET subject = 'edited' WHERE seq = 2")
    db.conn.commit()
    db.close()


def _rekey_record(db: sqlite_utils.Database) -> dict[str, object]:
    row = next(iter(db.query("SELECT seq, detail FROM audit WHERE action = 'audit-rekey'")))
    return {"seq": row["seq"], **json.loads(row["detail"])}


def test_an_intact_plain_chain_is_rekeyed_and_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _legacy_folder(tmp_path, monkeypatch, 5)
    db = store_db.open_db(tmp_path)
    assert audit_key_path(tmp_path).stat().st_mode & 0o777 == 0o600
    assert verify_all(db) == []
    record = _rekey_record(db)
    assert record["seq"] == 6 and record["rows"] == 5 and record["previous_chain"] == "intact"
    # The old formula no longer verifies a single link: the chain is keyed from its first record.
    first = next(iter(db.query("SELECT * FROM audit WHERE seq = 1")))
    plain = audit._row_hash(
        first["prev_hash"], first["at"], first["actor"], first["action"], first["subject"], first["detail"]
    )
    assert first["hash"] != plain


def test_a_plain_chain_already_broken_is_rekeyed_with_its_problems_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _legacy_folder(tmp_path, monkeypatch, 4, edit=True)
    db = store_db.open_db(tmp_path)
    assert _rekey_record(db)["previous_chain"] == ["row 2: content edited"]


def test_a_chain_checked_under_another_key_fails_everywhere(tmp_path: Path) -> None:
    db = store_db.open_db(tmp_path)
    with db.atomic():
        audit.append(db, datetime(2025, 6, 3, tzinfo=UTC), "tech", "note", "s", {})
    db.close()
    audit_key_path(tmp_path).write_bytes(b"\x01" * 32)  # the key replaced: nothing verifies
    other = store_db.open_db(tmp_path)
    assert any("re-hashed without the device key" in p for p in verify_all(other))
