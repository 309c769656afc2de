"""The reference upstream's state: its own SQLite file, pricing inputs, enrolments and fault switches."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict, Field

from devkit.transaction import locked_transaction
from devkit.upstream.catalogue import load_rows
from devkit.upstream.faults import Faults
from devkit.upstream.people import person_from_json
from terminal.config import DEFAULT_CONFIG, load
from terminal.settlement import Catalog
from terminal.settlement.shelf import PolicyShelf
from terminal.settlement.signing import TrustedKey, TrustedKeys, generate_signing_key, key_id
from terminal.store.policy_files import load_catalog, load_insured_shelf, load_shelf, load_trusted_keys
from terminal.store.templates import PRE_TAGGING_MODEL_ID
from terminal.uplink.gallery import (
    MAX_MODELS,
    MAX_TEMPLATES,
    GalleryRemoval,
    WireBenefits,
    WireConsent,
    WireTemplate,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS terminals (
    opter TEXT PRIMARY KEY, public_key TEXT NOT NULL, sign_no TEXT NOT NULL,
    artefact_key TEXT NOT NULL DEFAULT '', data_key TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS messages (
    msgid TEXT PRIMARY KEY, infno TEXT NOT NULL, opter TEXT NOT NULL, response TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS settlements (
    arrival INTEGER PRIMARY KEY AUTOINCREMENT,
    msgid TEXT NOT NULL UNIQUE, fixmedins_code TEXT NOT NULL, chrg_bchno TEXT NOT NULL,
    psn_no TEXT NOT NULL, day TEXT NOT NULL, state TEXT NOT NULL, result TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS persons (psn_no TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accumulators (
    psn_no TEXT NOT NULL, year INTEGER NOT NULL, state TEXT NOT NULL, PRIMARY KEY (psn_no, year)
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS registrations (
    opter TEXT PRIMARY KEY, public_key TEXT NOT NULL, fixmedins_code TEXT NOT NULL, admdvs TEXT NOT NULL,
    registered_at TEXT NOT NULL, artefact_key TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS enrolments (
    psn_no TEXT PRIMARY KEY, state TEXT NOT NULL, version INTEGER NOT NULL,
    consent TEXT NOT NULL, templates TEXT NOT NULL, benefits TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS enrolments_version ON enrolments(version);
CREATE TABLE IF NOT EXISTS audit_heads (
    id INTEGER PRIMARY KEY, opter TEXT NOT NULL, seq INTEGER NOT NULL, mac TEXT NOT NULL,
    signature TEXT NOT NULL, received_at TEXT NOT NULL, verdict TEXT NOT NULL, reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_heads_opter ON audit_heads(opter, verdict, seq);
CREATE TABLE IF NOT EXISTS histories (
    psn_no TEXT PRIMARY KEY, version INTEGER NOT NULL, identities TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS ec_tokens (
    token TEXT PRIMARY KEY, psn_no TEXT NOT NULL, expires_at REAL NOT NULL, used_by TEXT
);
"""
# Columns added after a table first shipped: a file from before gets them (empty) on opening.
ADDED_COLUMNS = (
    ("terminals", "artefact_key", "TEXT NOT NULL DEFAULT ''"),  # Ed25519 (base64): the audit heads' key
    ("terminals", "data_key", "TEXT NOT NULL DEFAULT ''"),  # hex SM4 key agreed at this sign-in
    ("registrations", "artefact_key", "TEXT NOT NULL DEFAULT ''"),
)


class Enrolment(BaseModel):
    """A face enrolment as POST /admin/gallery/enrol takes it (the person must already be known)."""

    model_config = ConfigDict(extra="forbid")

    psn_no: str = Field(min_length=1, description="person number, registered with /admin/persons")
    consent: WireConsent = Field(description="the consent record")
    templates: list[WireTemplate] = Field(min_length=1, description="{model_id, vector} each")
    benefits: WireBenefits = Field(default=WireBenefits(), description="insurance status, 门特, assistance")
    keep_other_models: bool = Field(
        default=True,
        description="keep the person's templates of models this request does not carry (re-enrolment "
        "for a new embedder); false drops them (the end of a migration)",
    )


class Upstream:
    """The upstream's state: its SQLite file, pricing inputs and fault switches."""

    def __init__(
        self,
        db_path: Path,
        catalog: Catalog,
        shelf: PolicyShelf,
        institution_level: str,
        policy_folder: Path | None = None,
        gallery_key: bytes | None = None,
        insured_shelf: PolicyShelf | None = None,
    ) -> None:
        self.conn = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(SCHEMA)
        for table, column, kind in ADDED_COLUMNS:
            held = {row["name"] for row in self.conn.execute(f"PRAGMA table_info({table})")}
            if column not in held:
                self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        # One lock for the whole upstream: requests are few and correctness beats concurrency here.
        self.lock = threading.Lock()
        self.catalog = catalog
        # the national-format rows it serves to 1312/1318/1319 (devkit/upstream/catalogue.py)
        self.catalogue_rows = load_rows()
        # other regions' bundles, for patients insured elsewhere (the terminal's insured-place shelf)
        self.insured_shelf = insured_shelf or PolicyShelf([])
        self.shelf = shelf
        self.institution_level = institution_level
        self.policy_folder = policy_folder
        # PEM of the Ed25519 key gallery deltas are signed with; a throwaway one unless given.
        self.gallery_signing_pem = gallery_key or generate_signing_key()[0]
        self.faults = Faults()

    def close(self) -> None:
        """Close the database."""
        self.conn.close()

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """The one write transaction at a time on the upstream's database."""
        return locked_transaction(self.conn, self.lock)

    def next_value(self, conn: sqlite3.Connection, name: str) -> int:
        """The next number of the named counter (inside a transaction)."""
        conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, 1)"
            " ON CONFLICT(name) DO UPDATE SET value = value + 1",
            [name],
        )
        return int(conn.execute("SELECT value FROM counters WHERE name = ?", [name]).fetchone()[0])

    def add_persons(self, people: Sequence[Mapping[str, Any]]) -> int:
        """Register (or replace) people the upstream prices for."""
        with self.transaction() as conn:
            for person in people:
                person_from_json(person)  # refuse malformed records before storing any
                conn.execute(
                    "INSERT OR REPLACE INTO persons (psn_no, data) VALUES (?, ?)",
                    [person["psn_no"], json.dumps(dict(person), ensure_ascii=False, default=str)],
                )
                # Changed person data reaches terminals in the next gallery delta.
                conn.execute(
                    "UPDATE enrolments SET version = ? WHERE psn_no = ? AND state = 'enrolled'",
                    [self.next_value(conn, "gallery_version"), person["psn_no"]],
                )
        return len(people)

    def gallery_key(self) -> TrustedKeys:
        """The public half of the delta signing key, as a terminal's trusted-keys file holds it."""
        private = serialization.load_pem_private_key(self.gallery_signing_pem, password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise ValueError("the gallery signing key is not an Ed25519 key")
        raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        entry = TrustedKey(
            key_id=key_id(raw),
            public_key=base64.b64encode(raw).decode(),
            note="dev upstream gallery-delta key; development only",
        )
        return TrustedKeys(keys=(entry,))

    def enrol(self, enrolment: Enrolment) -> int:
        """Add or replace a consenting person's face enrolment; the gallery version it is at.

        The templates replace the person's templates of the models they name; those of other models
        are kept unless keep_other_models is false (docs/identity.md, "Changing the embedder").
        """
        sent = [t.model_dump() for t in enrolment.templates]
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM persons WHERE psn_no = ?", [enrolment.psn_no]).fetchone() is None:
                raise ValueError(
                    f"person {enrolment.psn_no} is not known; add them with /admin/persons first"
                )
            held = conn.execute(
                "SELECT templates FROM enrolments WHERE psn_no = ? AND state = 'enrolled'", [enrolment.psn_no]
            ).fetchone()
            if held is not None and enrolment.keep_other_models:
                models = {t["model_id"] for t in sent}
                sent = [t for t in stored_templates(held["templates"]) if t["model_id"] not in models] + sent
            _check_counts(enrolment.psn_no, sent)
            version = self.next_value(conn, "gallery_version")
            conn.execute(
                "INSERT OR REPLACE INTO enrolments (psn_no, state, version, consent, templates, benefits)"
                " VALUES (?, 'enrolled', ?, ?, ?, ?)",
                [
                    enrolment.psn_no,
                    version,
                    enrolment.consent.model_dump_json(),
                    json.dumps(sent),
                    enrolment.benefits.model_dump_json(),
                ],
            )
        return version

    def remove_enrolment(self, removal: GalleryRemoval) -> int:
        """Withdraw consent or mark the person uninsured: terminals delete the templates; the version."""
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM enrolments WHERE psn_no = ?", [removal.psn_no]).fetchone() is None:
                raise ValueError(f"person {removal.psn_no} has no face enrolment")
            version = self.next_value(conn, "gallery_version")
            # The upstream drops the templates too: nothing biometric outlives the consent.
            conn.execute(
                "UPDATE enrolments SET state = ?, version = ?, templates = '[]' WHERE psn_no = ?",
                [removal.reason, version, removal.psn_no],
            )
        return version

    def registrations(self) -> list[dict[str, Any]]:
        """Registered terminals."""
        with self.lock:
            rows = self.conn.execute("SELECT * FROM registrations ORDER BY opter").fetchall()
        return [dict(r) for r in rows]

    def settlements(self) -> list[dict[str, Any]]:
        """Every settlement in arrival order."""
        with self.lock:
            rows = self.conn.execute("SELECT * FROM settlements ORDER BY arrival").fetchall()
        return [{**dict(r), "result": json.loads(r["result"])} for r in rows]

    def take_fault(self, name: str) -> bool:
        """Consume one count of a counted fault."""
        with self.lock:
            left = int(getattr(self.faults, name))
            if left <= 0:
                return False
            setattr(self.faults, name, left - 1)
            return True


def stored_templates(column: str) -> list[dict[str, str]]:
    """An enrolment's templates as {model_id, vector}; bare strings (rows from before tagging) are dlib's."""
    return [
        {"model_id": PRE_TAGGING_MODEL_ID, "vector": t} if isinstance(t, str) else dict(t)
        for t in json.loads(column)
    ]


def _check_counts(psn_no: str, templates: Sequence[Mapping[str, str]]) -> None:
    """What a terminal accepts per person (terminal/uplink/gallery.py), refused here before it is stored."""
    per_model = Counter(t["model_id"] for t in templates)
    if len(per_model) > MAX_MODELS or max(per_model.values()) > MAX_TEMPLATES:
        raise ValueError(
            f"person {psn_no} would hold {dict(per_model)} templates: at most {MAX_TEMPLATES} per model "
            f"and {MAX_MODELS} models"
        )


def gallery_signing_key(path: Path) -> bytes:
    """PEM of the gallery-delta signing key at path, created (0600) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem, _ = generate_signing_key()
        # Written then renamed: a half-written key would change the key terminals trust.
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        os.replace(tmp, path)
    return path.read_bytes()


def build_upstream(
    db_path: Path, config_path: Path = DEFAULT_CONFIG, gallery_key: Path | None = None
) -> Upstream:
    """An Upstream pricing with the catalogue and policies of a terminal config."""
    config = load(config_path)
    settlement = config.settlement
    trusted = load_trusted_keys(settlement.trusted_keys)
    shelf = load_shelf(settlement.policies, trusted)
    return Upstream(
        db_path,
        load_catalog(settlement.catalog),
        shelf,
        config.terminal.institution_level,
        settlement.policies,
        gallery_signing_key(gallery_key or db_path.with_name(db_path.name + ".gallery_key.pem")),
        load_insured_shelf(settlement.policies, trusted, config.terminal.mdtrtarea_admvs),
    )
