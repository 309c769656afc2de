"""People at rest: ID numbers and credentials as keyed hashes, names sealed, and the in-place migration."""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path

import pytest
import sqlite_utils

from firmware_bridge.simulate import DEMO_CARD, DEMO_EC_TOKEN
from terminal.demo_data import DEMO_PEOPLE
from terminal.domain import CertType, IdentityClaim
from terminal.errors import KeyFileError, TemplateIntegrityError, UnknownPersonError
from terminal.store import db as store_db
from terminal.store.db import DB_NAME, MIGRATIONS, open_db
from terminal.store.device_key import DeviceKeys, create_device_key, device_key_path, read_device_key
from terminal.store.gallery import SqliteGallery
from terminal.store.keys import TemplateCipher, read_key
from terminal.store.people import device_keys
from tests.fakes import FixedClock

LI, WANG, ZHANG = DEMO_PEOPLE[0], DEMO_PEOPLE[1], DEMO_PEOPLE[2]


def _gallery(data_dir: Path, clock: FixedClock) -> SqliteGallery:
    db = open_db(data_dir)
    return SqliteGallery(db, TemplateCipher(read_key(data_dir)), clock, device_keys(db, data_dir))


def _file_bytes(data_dir: Path) -> bytes:
    """The database and its side files as an attacker copying the folder would read them."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.glob(DB_NAME + "*")) if p.is_file())


def _personal_strings(people: list, tokens: list[str]) -> list[str]:
    out = [*tokens]
    for person in people:
        out += [person.psn_name, person.certno, person.brdy.isoformat() if person.brdy else ""]
    return [s for s in out if s]


def test_nothing_personal_is_stored_in_clear_and_lookups_go_through_hmacs(
    data_dir: Path, clock: FixedClock
) -> None:
    gallery = _gallery(data_dir, clock)
    for person in DEMO_PEOPLE:
        gallery.upsert_person(person)
    gallery.link_credential(CertType.SOCIAL_SECURITY_CARD, DEMO_CARD.card_no, LI.psn_no)
    gallery.link_credential(CertType.EC_TOKEN, DEMO_EC_TOKEN, LI.psn_no)
    gallery._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    raw = _file_bytes(data_dir)
    for secret in _personal_strings(DEMO_PEOPLE, [DEMO_CARD.card_no, DEMO_EC_TOKEN]):
        assert secret.encode() not in raw, f"{secret!r} is readable in the database file"
    assert gallery.person(LI.psn_no) == LI
    assert gallery.person_by_claim(IdentityClaim(CertType.ID_NUMBER, ZHANG.certno)) == ZHANG
    # A typed lower-case check character names the same person.
    assert gallery.person_by_claim(IdentityClaim(CertType.ID_NUMBER, ZHANG.certno.lower())) == ZHANG
    assert gallery.person_by_claim(IdentityClaim(CertType.EC_TOKEN, DEMO_EC_TOKEN)) == LI
    assert gallery.person_by_claim(IdentityClaim(CertType.SOCIAL_SECURITY_CARD, DEMO_CARD.card_no)) == LI
    # The card number is not a QR token: the type is part of the keyed hash.
    with pytest.raises(UnknownPersonError):
        gallery.person_by_claim(IdentityClaim(CertType.EC_TOKEN, DEMO_CARD.card_no))
    row = next(iter(gallery._db.query("SELECT * FROM persons WHERE psn_no = ?", [ZHANG.psn_no])))
    assert row["certno_last4"] == "003X"
    assert set(row) == {
        "psn_no", "certno_hmac", "certno_last4", "sealed", "insutype", "psn_type", "insuplc_admdvs",
        "acct_balc",
    }  # fmt: skip


def test_an_update_reseals_and_keeps_the_id_number_unique(data_dir: Path, clock: FixedClock) -> None:
    gallery = _gallery(data_dir, clock)
    gallery.upsert_person(WANG)
    renamed = replace(WANG, psn_name="王秀英")
    gallery.upsert_person(renamed)
    assert gallery.person(WANG.psn_no) == renamed
    with pytest.raises(sqlite_utils.db.sqlite3.IntegrityError):
        gallery.upsert_person(replace(LI, certno=WANG.certno))


def test_a_sealed_record_moved_to_another_person_or_under_another_key_fails(
    data_dir: Path, clock: FixedClock, tmp_path: Path
) -> None:
    gallery = _gallery(data_dir, clock)
    gallery.upsert_person(LI)
    gallery.upsert_person(WANG)
    db = gallery._db
    li_sealed = next(iter(db.query("SELECT sealed FROM persons WHERE psn_no = ?", [LI.psn_no])))["sealed"]
    db.execute("UPDATE persons SET sealed = ? WHERE psn_no = ?", [li_sealed, WANG.psn_no])
    with pytest.raises(TemplateIntegrityError, match=WANG.psn_no):
        gallery.person(WANG.psn_no)
    other = SqliteGallery(db, TemplateCipher(read_key(data_dir)), clock, DeviceKeys(b"o" * 32))
    with pytest.raises(TemplateIntegrityError):
        other.person(LI.psn_no)
    # Under another key the HMAC differs too: the ID number finds nobody.
    with pytest.raises(UnknownPersonError):
        other.person_by_claim(IdentityClaim(CertType.ID_NUMBER, LI.certno))


def test_device_key_file_is_owner_only_and_never_replaced(tmp_path: Path) -> None:
    path = create_device_key(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = read_device_key(tmp_path)
    create_device_key(tmp_path)
    assert read_device_key(tmp_path) == first
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match=r"device key .* readable by others"):
        read_device_key(tmp_path)


def test_a_lost_device_key_is_not_silently_replaced(data_dir: Path, clock: FixedClock) -> None:
    gallery = _gallery(data_dir, clock)
    gallery.upsert_person(LI)
    device_key_path(data_dir).unlink()
    with pytest.raises(KeyFileError, match="missing"):
        device_keys(open_db(data_dir), data_dir)
    assert not device_key_path(data_dir).exists()


def _clear_database(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database as the release before 0015 left it: the demo people and their credentials in clear."""
    before = [name for name, _ in MIGRATIONS].index("0015_people_keyed")
    monkeypatch.setattr(store_db, "MIGRATIONS", MIGRATIONS[:before])
    db = open_db(data_dir)
    for p in DEMO_PEOPLE:
        db.execute(
            "INSERT INTO persons (psn_no, psn_name, certno, insutype, psn_type, insuplc_admdvs, acct_balc,"
            " gend, brdy) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [p.psn_no, p.psn_name, p.certno, p.insutype, p.psn_type, p.insuplc_admdvs, str(p.acct_balc),
             p.gend, p.brdy.isoformat() if p.brdy else None],
        )  # fmt: skip
    for cert_type, number in (("03", DEMO_CARD.card_no), ("01", DEMO_EC_TOKEN)):
        db.execute(
            "INSERT INTO credentials (mdtrt_cert_type, mdtrt_cert_no, psn_no) VALUES (?, ?, ?)",
            [cert_type, number, LI.psn_no],
        )
    db.conn.commit()
    db.close()
    monkeypatch.undo()


def test_the_migration_converts_a_clear_database_in_place(
    data_dir: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clear_database(data_dir, monkeypatch)
    assert LI.psn_name.encode() in _file_bytes(data_dir)
    assert not device_key_path(data_dir).exists(), "a terminal from before the device key"

    gallery = _gallery(data_dir, clock)  # opening applies 0015 and creates the device key

    assert stat.S_IMODE(device_key_path(data_dir).stat().st_mode) == 0o600
    for person in DEMO_PEOPLE:
        assert gallery.person(person.psn_no) == person
        assert gallery.person_by_claim(IdentityClaim(CertType.ID_NUMBER, person.certno)) == person
    assert gallery.person_by_claim(IdentityClaim(CertType.EC_TOKEN, DEMO_EC_TOKEN)) == LI
    assert gallery.person_by_claim(IdentityClaim(CertType.SOCIAL_SECURITY_CARD, DEMO_CARD.card_no)) == LI
    lasts = {r["psn_no"]: r["certno_last4"] for r in gallery._db.query("SELECT * FROM persons")}
    assert lasts == {p.psn_no: p.certno[-4:] for p in DEMO_PEOPLE}
    gallery._db.close()
    raw = _file_bytes(data_dir)
    for secret in _personal_strings(DEMO_PEOPLE, [DEMO_CARD.card_no, DEMO_EC_TOKEN]):
        assert secret.encode() not in raw, f"{secret!r} survives the migration in the file"
