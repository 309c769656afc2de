"""The serving terminal's 1:N index: loaded once, current with enrolments, deltas and withdrawals made by any
process, bucketed by the ID number's last four (migration 0012 fills it for people already stored)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlite_utils

from terminal.app.face_index import LiveFaceIndex
from terminal.domain import Consent, Person
from terminal.store import db as store_db
from terminal.store.db import MIGRATIONS, open_db
from terminal.store.gallery import SqliteGallery
from terminal.store.keys import TemplateCipher, read_key
from terminal.store.template_feed import TemplateFeed
from tests.fakes import FixedClock

MODEL = "sface@0ba9fbfa01b5"
A = Person("P-A", "甲", "43030219550101004X", "390", "active", "430302")
B = Person("P-B", "乙", "430302195501010023", "390", "active", "430302")


def _open(data_dir: Path, clock: FixedClock) -> tuple[sqlite_utils.Database, SqliteGallery, LiveFaceIndex]:
    db = open_db(data_dir)
    cipher = TemplateCipher(read_key(data_dir))
    return db, SqliteGallery(db, cipher, clock), LiveFaceIndex(TemplateFeed(db, cipher), MODEL, "cosine")


def _enrol(gallery: SqliteGallery, clock: FixedClock, person: Person, vectors: np.ndarray) -> None:
    consent = Consent(person.psn_no, clock.now(), "face checkout", "tech-1", "我同意")
    gallery.enroll(person, consent, list(vectors.astype(np.float32)), MODEL)


def _unit(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(2, 128)).astype(np.float32)


def test_the_index_follows_writes_of_another_connection(data_dir: Path, clock: FixedClock) -> None:
    _, writer, _ = _open(data_dir, clock)
    _, _, index = _open(data_dir, clock)  # the serving process
    a, b = _unit(1), _unit(2)
    _enrol(writer, clock, A, a)
    assert index.people() == 1 and index.people("004X") == 1
    assert index.search(a[0])[0] == ("P-A", pytest.approx(1.0))
    _enrol(writer, clock, B, b)
    assert [p for p, _ in index.search(b[1])] == ["P-B", "P-A"]
    assert [p for p, _ in index.search(b[1], "0023")] == ["P-B"]
    writer.withdraw_consent("P-B", "tech-1")
    assert index.people() == 1 and index.search(b[1], "0023") == []
    assert [p for p, _ in index.search(b[1])] == ["P-A"], "a withdrawn person is never matched again"
    # a new ID number moves the person to its bucket
    writer.upsert_person(Person("P-A", "甲", "430302195501017778", "390", "active", "430302"))
    assert index.people("004X") == 0 and index.people("7778") == 1


def test_only_changed_people_are_decrypted_again(
    data_dir: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, gallery, index = _open(data_dir, clock)
    _enrol(gallery, clock, A, _unit(1))
    assert index.people() == 1
    opened: list[str] = []
    real = TemplateFeed._read

    def counting(self: TemplateFeed, sql: str, params: list[str]) -> object:
        found = real(self, sql, params)
        opened.extend(found[0])
        return found

    monkeypatch.setattr(TemplateFeed, "_read", counting)
    index.search(_unit(1)[0])
    assert opened == [], "nothing changed: nothing decrypted"
    _enrol(gallery, clock, B, _unit(2))
    index.search(_unit(1)[0])
    assert opened == ["P-B", "P-B"]


def test_migration_0012_fills_last4_for_people_already_stored(
    data_dir: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = [name for name, _ in MIGRATIONS].index("0012_index_last4")
    monkeypatch.setattr(store_db, "MIGRATIONS", MIGRATIONS[:before])
    db = open_db(data_dir)
    db.execute(
        "INSERT INTO persons (psn_no, psn_name, certno, insutype, psn_type, insuplc_admdvs, acct_balc, gend)"
        " VALUES ('P-OLD', '老', '43030219550101004x', '390', 'active', '430302', '0.00', '1')"
    )
    db.conn.commit()
    db.close()
    monkeypatch.undo()
    db = open_db(data_dir)
    assert next(iter(db.query("SELECT certno_last4 FROM persons")))["certno_last4"] == "004X"
    _, gallery, _ = _open(data_dir, clock)
    _enrol(gallery, clock, B, _unit(3))
    assert (
        next(iter(db.query("SELECT certno_last4 FROM persons WHERE psn_no = 'P-B'")))["certno_last4"]
        == "0023"
    )


def test_close_empties_the_index(data_dir: Path, clock: FixedClock) -> None:
    _, gallery, index = _open(data_dir, clock)
    _enrol(gallery, clock, A, _unit(1))
    assert index.people() == 1
    index.close()
    assert index._index.people() == 0
