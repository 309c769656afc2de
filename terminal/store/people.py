"""People and their linked credentials at rest: lookups by keyed hash, personal fields sealed.

A `persons` row keeps in clear only what settling needs and is not personal on its own (insurance type,
person type, insured place, account balance), the ID number's HMAC (the lookup key) and its last four
characters (the kiosk's second factor); the name, ID number, sex and birth date are one AES-GCM blob
bound to the psn_no. `credentials` keeps the HMAC of each linked QR token or card number, never the
number. Keys: terminal/store/device_key.py.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlite_utils

from terminal.domain import CertType, Person
from terminal.errors import KeyFileError, TemplateIntegrityError
from terminal.store.device_key import (
    DeviceKeys,
    certno_last4,
    create_device_key,
    device_key_path,
)

_PERSON_COLUMNS = "psn_no, certno_hmac, certno_last4, sealed, insutype, psn_type, insuplc_admdvs, acct_balc"


def sealed_fields(person: Person) -> dict[str, Any]:
    """The personal fields of a person that are stored only encrypted."""
    return {
        "psn_name": person.psn_name,
        "certno": person.certno,
        "gend": person.gend,
        "brdy": person.brdy.isoformat() if person.brdy else None,
    }


def upsert_person(db: sqlite_utils.Database, keys: DeviceKeys, person: Person) -> None:
    """Record or update a person: the ID number as HMAC + last four, the personal fields sealed."""
    db.execute(
        f"INSERT INTO persons ({_PERSON_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(psn_no) DO UPDATE SET certno_hmac=excluded.certno_hmac,"
        " certno_last4=excluded.certno_last4, sealed=excluded.sealed, insutype=excluded.insutype,"
        " psn_type=excluded.psn_type, insuplc_admdvs=excluded.insuplc_admdvs, acct_balc=excluded.acct_balc",
        [
            person.psn_no,
            keys.certno_mac(person.certno),
            certno_last4(person.certno),
            keys.seal_person(person.psn_no, sealed_fields(person)),
            person.insutype,
            person.psn_type,
            person.insuplc_admdvs,
            str(person.acct_balc),
        ],
    )


def person_exists(db: sqlite_utils.Database, psn_no: str) -> bool:
    """Whether the terminal holds a record of this person."""
    return bool(list(db.query("SELECT 1 FROM persons WHERE psn_no = ?", [psn_no])))


def find_person(db: sqlite_utils.Database, keys: DeviceKeys, psn_no: str) -> Person | None:
    """One person by psn_no, None when absent."""
    rows = list(db.query(f"SELECT {_PERSON_COLUMNS} FROM persons WHERE psn_no = ?", [psn_no]))
    return _person(keys, rows[0]) if rows else None


def person_by_certno(db: sqlite_utils.Database, keys: DeviceKeys, certno: str) -> Person | None:
    """The person holding this ID number, found by its HMAC; None when nobody does."""
    sql = f"SELECT {_PERSON_COLUMNS} FROM persons WHERE certno_hmac = ?"
    rows = list(db.query(sql, [keys.certno_mac(certno)]))
    return _person(keys, rows[0]) if rows else None


def person_by_credential(
    db: sqlite_utils.Database, keys: DeviceKeys, cert_type: CertType, cert_no: str
) -> Person | None:
    """The person a QR token or card number was linked to, found by its HMAC; None when unlinked."""
    columns = ", ".join(f"p.{name.strip()}" for name in _PERSON_COLUMNS.split(","))
    rows = list(
        db.query(
            f"SELECT {columns} FROM credentials c JOIN persons p ON p.psn_no = c.psn_no"
            " WHERE c.mdtrt_cert_type = ? AND c.cert_hmac = ?",
            [cert_type.value, keys.credential_mac(cert_type.value, cert_no)],
        )
    )
    return _person(keys, rows[0]) if rows else None


def link_credential(
    db: sqlite_utils.Database, keys: DeviceKeys, cert_type: CertType, cert_no: str, psn_no: str
) -> None:
    """Record that a QR token (01) or card number (03) belongs to a person: its HMAC, never the number."""
    db.execute(
        "INSERT INTO credentials (mdtrt_cert_type, cert_hmac, psn_no) VALUES (?, ?, ?)"
        " ON CONFLICT(mdtrt_cert_type, cert_hmac) DO UPDATE SET psn_no = excluded.psn_no",
        [cert_type.value, keys.credential_mac(cert_type.value, cert_no), psn_no],
    )


def unlink_credentials(db: sqlite_utils.Database, psn_no: str) -> int:
    """Forget every credential linked to a person; how many were."""
    return int(db.execute("DELETE FROM credentials WHERE psn_no = ?", [psn_no]).rowcount)


def unreadable_people(db: sqlite_utils.Database, keys: DeviceKeys) -> list[str]:
    """The psn_no of every sealed person that fails to open under these keys; empty when all open."""
    failures = []
    for row in db.query("SELECT psn_no, sealed FROM persons ORDER BY psn_no"):
        try:
            keys.open_person(row["psn_no"], bytes(row["sealed"]))
        except TemplateIntegrityError:
            failures.append(row["psn_no"])
    return failures


def _person(keys: DeviceKeys, row: dict[str, Any]) -> Person:
    sealed = keys.open_person(row["psn_no"], bytes(row["sealed"]))
    return Person(
        psn_no=row["psn_no"],
        psn_name=sealed["psn_name"],
        certno=sealed["certno"],
        insutype=row["insutype"],
        psn_type=row["psn_type"],
        insuplc_admdvs=row["insuplc_admdvs"],
        acct_balc=Decimal(row["acct_balc"]),
        gend=sealed["gend"],
        brdy=date.fromisoformat(sealed["brdy"]) if sealed["brdy"] else None,
    )


def device_keys(db: sqlite_utils.Database, data_dir: Path | None = None) -> DeviceKeys:
    """The device keys of this database's data folder, creating the key where that is safe (below)."""
    folder = data_dir if data_dir is not None else database_folder(db)
    if folder is None:
        raise KeyFileError("an in-memory database has no data folder and so no device key")
    ensure_device_key(db, folder)
    return DeviceKeys.of_data_dir(folder)


def ensure_device_key(db: sqlite_utils.Database, data_dir: Path) -> None:
    """Create the device key for a terminal that has none and holds nobody keyed under a lost one.

    A database whose people are already sealed and whose key is gone gets no new key: lookups would
    silently find nobody. Reading the key then fails and says how to restore it (docs/operations.md).
    """
    if device_key_path(data_dir).exists():
        return
    tables = {row["name"] for row in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "persons" in tables:
        columns = {column.name for column in db["persons"].columns}
        if "sealed" in columns and list(db.query("SELECT 1 FROM persons LIMIT 1")):
            return
    create_device_key(data_dir)


def database_folder(db: sqlite_utils.Database) -> Path | None:
    """The folder of the database file; None for an in-memory database."""
    for _, name, file in db.execute("PRAGMA database_list").fetchall():
        if name == "main" and file:
            return Path(file).parent
    return None
