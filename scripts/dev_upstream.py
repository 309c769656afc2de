"""Reference upstream for demos and tests: a real FastAPI server with its own SQLite file.

It speaks the wire contract of terminal/uplink/wire.py on one POST path, is idempotent on msgid,
prices settlements authoritatively with the same rule engine on its own copy of people and
accumulators, and injects faults on request (admin endpoint or CLI flags):

    down        every call answers 503 (as a gateway in maintenance would)
    slow_s      every call waits this many seconds first
    http500     the next N calls fail with HTTP 500 before anything is committed
    lost        the next N settlements are committed, then the reply is withheld for lost_hang_s
    differs     the authoritative result moves this amount from the fund to the patient
    tamper      policy bundles are served with a field altered after signing
    gallery_tamper     gallery deltas are served with a field altered after signing
    gallery_malformed  gallery deltas carry a cut-short template, correctly signed

Face enrolments (templates, consent, benefit facts) are added with POST /admin/gallery/enrol and
removed with POST /admin/gallery/remove; terminals fetch them as signed deltas (9103). The delta
signing key is kept next to the database and published at GET /admin/gallery/key.

    python -m scripts.dev_upstream --port 8765 --db /tmp/upstream.sqlite --persons people.json \
        --gallery-trusted /tmp/gallery_keys.json
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from terminal.clock import CST
from terminal.config import DEFAULT_CONFIG, load
from terminal.domain import Person
from terminal.errors import TerminalError
from terminal.pipeline.bills import bill_from_json
from terminal.settlement import (
    AccumulatorDelta,
    Accumulators,
    Catalog,
    SafetyFacts,
    SettlementContext,
    presettle,
)
from terminal.settlement.shelf import PolicyShelf
from terminal.settlement.signing import TrustedKey, TrustedKeys, generate_signing_key, key_id, sign_bundle
from terminal.store.policy_files import BUNDLE_FILE, load_catalog, load_shelf, load_trusted_keys
from terminal.uplink.gallery import (
    DELTA_KIND,
    TEMPLATE_FORMAT,
    GalleryRemoval,
    WireBenefits,
    WireConsent,
    template_from_wire,
)
from terminal.uplink.signing import verify_envelope
from terminal.uplink.wire import (
    CALL_PATH,
    INFNO_CORRECT,
    INFNO_DOWNLOAD,
    INFNO_GALLERY,
    INFNO_QUERY,
    INFNO_REGISTER,
    INFNO_REVERSE,
    INFNO_SETTLE,
    INFNO_SIGN_IN,
    INFNO_TOTALS,
)
from terminal.uplink.wire import Request as Envelope

log = logging.getLogger("dev_upstream")

SCHEMA = """
CREATE TABLE IF NOT EXISTS terminals (
    opter TEXT PRIMARY KEY, public_key TEXT NOT NULL, sign_no TEXT NOT NULL
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
    registered_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS enrolments (
    psn_no TEXT PRIMARY KEY, state TEXT NOT NULL, version INTEGER NOT NULL,
    consent TEXT NOT NULL, templates TEXT NOT NULL, benefits TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS enrolments_version ON enrolments(version);
"""


class Faults(BaseModel):
    """Fault switches; POST a partial object to /admin/faults to change some."""

    model_config = ConfigDict(extra="forbid")

    down: bool = Field(default=False, description="answer 503 to every call")
    slow_s: float = Field(default=0.0, ge=0, le=30, description="delay before every call")
    http500: int = Field(default=0, ge=0, description="the next N calls fail with 500, nothing committed")
    lost: int = Field(default=0, ge=0, description="the next N settlements commit, then the reply is lost")
    lost_hang_s: float = Field(default=2.0, ge=0, le=30, description="how long a lost reply is withheld")
    differs: Decimal = Field(default=Decimal("0.00"), description="amount moved from fund to patient")
    tamper: bool = Field(default=False, description="serve policy bundles with one figure altered")
    gallery_tamper: bool = Field(default=False, description="serve gallery deltas altered after signing")
    gallery_malformed: bool = Field(
        default=False, description="sign gallery deltas with a cut-short template"
    )


class Enrolment(BaseModel):
    """A face enrolment as POST /admin/gallery/enrol takes it (the person must already be known)."""

    model_config = ConfigDict(extra="forbid")

    psn_no: str = Field(min_length=1, description="person number, registered with /admin/persons")
    consent: WireConsent = Field(description="the consent record")
    templates: list[str] = Field(min_length=1, description="base64 little-endian float32 × 128 each")
    benefits: WireBenefits = Field(default=WireBenefits(), description="insurance status, 门特, assistance")


class _Refusal(Exception):
    """A business refusal: answered with infcode -1 and remembered for the msgid."""


class _AuthFailure(Exception):
    """Unsigned, wrongly signed or stale sign_no: HTTP 401, nothing remembered."""


@contextmanager
def locked_transaction(conn: sqlite3.Connection, lock: threading.Lock) -> Iterator[sqlite3.Connection]:
    """One write transaction at a time on a reference server's own SQLite file (BEGIN IMMEDIATE)."""
    with lock:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


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
    ) -> None:
        self._conn = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(SCHEMA)
        self._lock = threading.Lock()
        self._catalog = catalog
        self._shelf = shelf
        self._level = institution_level
        self._policy_folder = policy_folder
        # PEM of the Ed25519 key gallery deltas are signed with; a throwaway one unless given.
        self._gallery_key = gallery_key or generate_signing_key()[0]
        self.faults = Faults()

    def close(self) -> None:
        """Close the database."""
        self._conn.close()

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        # One lock for the whole upstream: requests are few and correctness beats concurrency here.
        return locked_transaction(self._conn, self._lock)

    def _next(self, conn: sqlite3.Connection, name: str) -> int:
        conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, 1)"
            " ON CONFLICT(name) DO UPDATE SET value = value + 1",
            [name],
        )
        return int(conn.execute("SELECT value FROM counters WHERE name = ?", [name]).fetchone()[0])

    def add_persons(self, people: Sequence[Mapping[str, Any]]) -> int:
        """Register (or replace) people the upstream prices for."""
        with self._tx() as conn:
            for person in people:
                _person(person)  # refuse malformed records before storing any
                conn.execute(
                    "INSERT OR REPLACE INTO persons (psn_no, data) VALUES (?, ?)",
                    [person["psn_no"], json.dumps(dict(person), ensure_ascii=False, default=str)],
                )
                # Changed person data reaches terminals in the next gallery delta.
                conn.execute(
                    "UPDATE enrolments SET version = ? WHERE psn_no = ? AND state = 'enrolled'",
                    [self._next(conn, "gallery_version"), person["psn_no"]],
                )
        return len(people)

    def gallery_key(self) -> TrustedKeys:
        """The public half of the delta signing key, as a terminal's trusted-keys file holds it."""
        private = serialization.load_pem_private_key(self._gallery_key, password=None)
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
        """Add or replace a consenting person's face enrolment; the gallery version it is at."""
        for text in enrolment.templates:
            template_from_wire(text)  # ValueError before anything is stored
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM persons WHERE psn_no = ?", [enrolment.psn_no]).fetchone() is None:
                raise ValueError(
                    f"person {enrolment.psn_no} is not known; add them with /admin/persons first"
                )
            version = self._next(conn, "gallery_version")
            conn.execute(
                "INSERT OR REPLACE INTO enrolments (psn_no, state, version, consent, templates, benefits)"
                " VALUES (?, 'enrolled', ?, ?, ?, ?)",
                [
                    enrolment.psn_no,
                    version,
                    enrolment.consent.model_dump_json(),
                    json.dumps(enrolment.templates),
                    enrolment.benefits.model_dump_json(),
                ],
            )
        return version

    def remove_enrolment(self, removal: GalleryRemoval) -> int:
        """Withdraw consent or mark the person uninsured: terminals delete the templates; the version."""
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM enrolments WHERE psn_no = ?", [removal.psn_no]).fetchone() is None:
                raise ValueError(f"person {removal.psn_no} has no face enrolment")
            version = self._next(conn, "gallery_version")
            # The upstream drops the templates too: nothing biometric outlives the consent.
            conn.execute(
                "UPDATE enrolments SET state = ?, version = ?, templates = '[]' WHERE psn_no = ?",
                [removal.reason, version, removal.psn_no],
            )
        return version

    def registrations(self) -> list[dict[str, Any]]:
        """Registered terminals."""
        with self._lock:
            rows = self._conn.execute("SELECT * FROM registrations ORDER BY opter").fetchall()
        return [dict(r) for r in rows]

    def settlements(self) -> list[dict[str, Any]]:
        """Every settlement in arrival order."""
        with self._lock:
            rows = self._conn.execute("SELECT * FROM settlements ORDER BY arrival").fetchall()
        return [{**dict(r), "result": json.loads(r["result"])} for r in rows]

    def take_fault(self, name: str) -> bool:
        """Consume one count of a counted fault."""
        with self._lock:
            left = int(getattr(self.faults, name))
            if left <= 0:
                return False
            setattr(self.faults, name, left - 1)
            return True

    def handle(self, body: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Process one envelope; (response, committed_new_settlement); _AuthFailure when not trusted."""
        try:
            env = Envelope.model_validate(body)
        except ValidationError as exc:
            return _fail(
                str(body.get("msgid", "")), f"malformed envelope: {exc.error_count()} problems"
            ), False
        try:
            return self._dispatch(env, body)
        except _Refusal as exc:
            return _fail(env.msgid, str(exc)), False

    def _dispatch(self, env: Envelope, body: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        if env.infno == INFNO_SIGN_IN:
            return self._sign_in(env, body), False
        if env.infno == INFNO_REGISTER:
            return self._register(env, body), False
        self._authenticate(env, body)
        if env.infno == INFNO_GALLERY:
            return self._gallery(env), False
        if env.infno == INFNO_QUERY:
            return self._query(env), False
        if env.infno == INFNO_TOTALS:
            return self._totals(env), False
        if env.infno == INFNO_DOWNLOAD:
            return self._download(env), False
        if env.infno in (INFNO_SETTLE, INFNO_REVERSE, INFNO_CORRECT):
            return self._idempotent(env)
        raise _Refusal(f"infno {env.infno} is not offered by this upstream")

    def _sign_in(self, env: Envelope, body: Mapping[str, Any]) -> dict[str, Any]:
        sign_in = env.input.get("signIn", {})
        public_key = str(sign_in.get("public_key", ""))
        # Development trust-on-first-use: the key in the request must have signed it; a field
        # deployment registers terminal keys out of band instead.
        if not verify_envelope(body, public_key):
            raise _Refusal("sign-in signature does not verify with the presented key")
        with self._tx() as conn:
            known = conn.execute("SELECT public_key FROM terminals WHERE opter = ?", [env.opter]).fetchone()
            if known is not None and known["public_key"] != public_key:
                raise _Refusal(f"terminal {env.opter} is registered with another key")
            reg = conn.execute("SELECT public_key FROM registrations WHERE opter = ?", [env.opter]).fetchone()
            if reg is not None and reg["public_key"] != public_key:
                raise _Refusal(f"terminal {env.opter} is registered (9000) with another key")
            sign_no = f"{env.mdtrtarea_admvs}{self._next(conn, 'sign_no'):012d}"
            conn.execute(
                "INSERT OR REPLACE INTO terminals (opter, public_key, sign_no) VALUES (?, ?, ?)",
                [env.opter, public_key, sign_no],
            )
        return _ok(env.msgid, {"signinoutb": {"sign_time": env.inf_time, "sign_no": sign_no}})

    def _register(self, env: Envelope, body: Mapping[str, Any]) -> dict[str, Any]:
        data = env.input.get("terminal", {})
        public_key = str(data.get("public_key", ""))
        # Proof of possession: the presented key must have signed the request.
        if not verify_envelope(body, public_key):
            raise _Refusal("registration signature does not verify with the presented key")
        wanted = {
            "terminal_id": env.opter,
            "fixmedins_code": env.fixmedins_code,
            "admdvs": str(data.get("admdvs", "")),
            "public_key": public_key,
        }
        if data.get("terminal_id") != env.opter or data.get("fixmedins_code") != env.fixmedins_code:
            raise _Refusal(
                "terminal_id and fixmedins_code must match the envelope's opter and fixmedins_code"
            )
        if not wanted["admdvs"].isdigit() or len(wanted["admdvs"]) != 6:
            raise _Refusal("admdvs must be a 6-digit area code")
        with self._tx() as conn:
            row = conn.execute("SELECT * FROM registrations WHERE opter = ?", [env.opter]).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO registrations (opter, public_key, fixmedins_code, admdvs, registered_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [env.opter, public_key, env.fixmedins_code, wanted["admdvs"], env.inf_time],
                )
                registered_at = env.inf_time
            else:
                # Idempotent: the same terminal again gets the same registration; anything else is refused.
                held = {
                    "terminal_id": row["opter"],
                    "fixmedins_code": row["fixmedins_code"],
                    "admdvs": row["admdvs"],
                    "public_key": row["public_key"],
                }
                if held != wanted:
                    changed = sorted(k for k in wanted if held[k] != wanted[k])
                    raise _Refusal(
                        f"terminal {env.opter} is already registered with another {', '.join(changed)}"
                    )
                registered_at = row["registered_at"]
        return _ok(env.msgid, {"terminal": {**wanted, "registered_at": registered_at}})

    def _gallery(self, env: Envelope) -> dict[str, Any]:
        since = env.input.get("data", {}).get("since")
        if not isinstance(since, int) or isinstance(since, bool) or since < 0:
            raise _Refusal("data.since must be a non-negative integer version")
        with self._lock:
            reg = self._conn.execute("SELECT * FROM registrations WHERE opter = ?", [env.opter]).fetchone()
            if reg is None or reg["fixmedins_code"] != env.fixmedins_code:
                raise _Refusal(f"terminal {env.opter} is not registered (9000) for {env.fixmedins_code}")
            row = self._conn.execute("SELECT value FROM counters WHERE name = 'gallery_version'").fetchone()
            current = int(row["value"]) if row else 0
            if since > current:
                raise _Refusal(f"since {since} is ahead of the upstream's gallery version {current}")
            changed = self._conn.execute(
                "SELECT e.*, p.data AS person FROM enrolments e JOIN persons p ON p.psn_no = e.psn_no"
                " WHERE e.version > ? ORDER BY e.version",
                [since],
            ).fetchall()
        upserts, removals = [], []
        for r in changed:
            if r["state"] == "enrolled":
                person = person_json(_person(json.loads(r["person"])))
                person["acct_balc"] = str(Decimal(person["acct_balc"]).quantize(Decimal("0.01")))
                upserts.append(
                    {
                        "psn_no": r["psn_no"],
                        "person": person,
                        "benefits": json.loads(r["benefits"]),
                        "consent": json.loads(r["consent"]),
                        "templates": json.loads(r["templates"]),
                    }
                )
            elif since > 0:
                # A terminal starting from nothing never held them: nothing to remove.
                removals.append({"psn_no": r["psn_no"], "reason": r["state"]})
        if self.faults.gallery_malformed and upserts:
            upserts[0]["templates"] = [upserts[0]["templates"][0][:12]]
        delta = {
            "kind": DELTA_KIND,
            "fixmedins_code": env.fixmedins_code,
            "opter": env.opter,
            "since": since,
            "version": current,
            "issued_at": datetime.now(CST).isoformat(timespec="seconds"),
            "template_format": TEMPLATE_FORMAT,
            "upserts": upserts,
            "removals": removals,
        }
        document = sign_bundle(delta, self._gallery_key)
        if self.faults.gallery_tamper:
            # A man in the middle granting an assistance category (or skipping ahead): the signature breaks.
            if upserts:
                document["bundle"]["upserts"][0]["benefits"]["assistance_category"] = "tekun"
            else:
                document["bundle"]["version"] = current + 1
        return _ok(env.msgid, {"document": document})

    def _authenticate(self, env: Envelope, body: Mapping[str, Any]) -> None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM terminals WHERE opter = ?", [env.opter]).fetchone()
        if row is None:
            raise _AuthFailure(f"terminal {env.opter} has not signed in (9001)")
        if not verify_envelope(body, row["public_key"]):
            raise _AuthFailure("signature (cainfo) does not verify")
        if env.sign_no != row["sign_no"]:
            raise _AuthFailure("sign_no is not current; sign in again (9001)")

    def _download(self, env: Envelope) -> dict[str, Any]:
        data = env.input.get("data", {})
        folder = self._policy_folder
        if data.get("kind") != "policy" or folder is None:
            raise _Refusal("only policy bundles are offered for download")
        names = sorted(p.name for p in folder.iterdir() if BUNDLE_FILE.match(p.name))
        name = data.get("filename")
        if name is None:
            return _ok(env.msgid, {"files": names})
        if name not in names:
            raise _Refusal(f"no policy file {name}")
        document = json.loads((folder / name).read_text(encoding="utf-8"))
        if self.faults.tamper:
            # A man in the middle raising one figure: the signature no longer matches the bundle.
            document["bundle"]["version"] = f"{document['bundle']['version']}-tampered"
        return _ok(env.msgid, {"filename": name, "document": document})

    def _query(self, env: Envelope) -> dict[str, Any]:
        omsgid = str(env.input.get("data", {}).get("omsgid", ""))
        with self._lock:
            row = self._conn.execute("SELECT response FROM messages WHERE msgid = ?", [omsgid]).fetchone()
        if row is None:
            return _ok(env.msgid, {"found": False})
        return _ok(env.msgid, {"found": True, "response": json.loads(row["response"])})

    def _totals(self, env: Envelope) -> dict[str, Any]:
        data = env.input.get("data", {})
        day = str(data.get("stmt_begndate", ""))
        with self._lock:
            rows = self._conn.execute(
                "SELECT result FROM settlements WHERE fixmedins_code = ? AND day = ? AND state = 'settled'",
                [env.fixmedins_code, day],
            ).fetchall()
        infos = [json.loads(r["result"])["setlinfo"] for r in rows]
        theirs = {
            "medfee_sumamt": str(sum((Decimal(i["medfee_sumamt"]) for i in infos), Decimal("0.00"))),
            "fund_pay_sumamt": str(sum((Decimal(i["fund_pay_sumamt"]) for i in infos), Decimal("0.00"))),
            "acct_pay": str(sum((Decimal(i["acct_pay"]) for i in infos), Decimal("0.00"))),
            "fixmedins_setl_cnt": str(len(infos)),
        }
        agree = all(Decimal(str(data.get(k, "-1"))) == Decimal(v) for k, v in theirs.items())
        return _ok(
            env.msgid,
            {
                "stmt_rslt": "0" if agree else "1",
                "stmt_rslt_dscr": "totals agree" if agree else "totals differ; reconcile in detail (3202)",
                "upstream": theirs,
            },
        )

    def _idempotent(self, env: Envelope) -> tuple[dict[str, Any], bool]:
        with self._tx() as conn:
            row = conn.execute("SELECT infno, response FROM messages WHERE msgid = ?", [env.msgid]).fetchone()
            if row is not None:
                if row["infno"] != env.infno:
                    return _fail(env.msgid, f"msgid {env.msgid} was used for infno {row['infno']}"), False
                return json.loads(row["response"]), False
            try:
                if env.infno == INFNO_SETTLE:
                    response = self._settle(conn, env)
                elif env.infno == INFNO_REVERSE:
                    response = self._undo(conn, env, "reversed")
                else:
                    response = self._undo(conn, env, "corrected")
            except _Refusal as exc:
                response = _fail(env.msgid, str(exc))
            # Refusals are remembered too: a resend of the same msgid gets the same answer.
            conn.execute(
                "INSERT INTO messages (msgid, infno, opter, response) VALUES (?, ?, ?, ?)",
                [env.msgid, env.infno, env.opter, json.dumps(response, ensure_ascii=False)],
            )
        return response, env.infno == INFNO_SETTLE and response["infcode"] == 0

    def _settle(self, conn: sqlite3.Connection, env: Envelope) -> dict[str, Any]:
        data = env.input.get("data", {})
        row = conn.execute("SELECT data FROM persons WHERE psn_no = ?", [data.get("psn_no")]).fetchone()
        if row is None:
            raise _Refusal(f"person {data.get('psn_no')} is not known to the upstream")
        person = _person(json.loads(row["data"]))
        at = datetime.strptime(env.inf_time, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST)
        chrg_bchno = str(data.get("chrg_bchno", ""))
        try:
            bill = bill_from_json(
                {
                    "chrg_bchno": chrg_bchno,
                    "med_type": data.get("med_type"),
                    "begntime": at.isoformat(),
                    "acct_used_flag": data.get("acct_used_flag") == "1",
                    "feedetail": env.input.get("feedetail", []),
                }
            )
            already = conn.execute(
                "SELECT 1 FROM settlements WHERE fixmedins_code = ? AND chrg_bchno = ? AND state = 'settled'",
                [env.fixmedins_code, chrg_bchno],
            ).fetchone()
            acc_row = conn.execute(
                "SELECT state FROM accumulators WHERE psn_no = ? AND year = ?", [person.psn_no, at.year]
            ).fetchone()
            before = Accumulators.from_json(json.loads(acc_row["state"]) if acc_row else {}, at.year)
            context = SettlementContext(
                institution_level=self._level,  # type: ignore[arg-type]
                setl_date=at.date(),
                cross_region=None if person.insuplc_admdvs[:4] == env.mdtrtarea_admvs[:4] else "unfiled",
                safety=SafetyFacts(bill_already_settled=already is not None),
            )
            result = presettle(bill, person, before, self._shelf.for_date(at.date()), self._catalog, context)
        except TerminalError as exc:
            raise _Refusal(str(exc)[:200]) from exc
        body = result.to_json()
        body["setlinfo"] = _perturbed(body["setlinfo"], self.faults.differs)
        setl_id = f"S{env.mdtrtarea_admvs}{self._next(conn, 'setl_id'):014d}"
        body["setlinfo"].update(
            {
                "setl_id": setl_id,
                "medins_setl_id": env.msgid,
                "psn_no": person.psn_no,
                "setl_time": env.inf_time,
            }
        )
        conn.execute(
            "INSERT OR REPLACE INTO accumulators (psn_no, year, state) VALUES (?, ?, ?)",
            [person.psn_no, at.year, json.dumps(result.accumulators_after.to_json())],
        )
        conn.execute(
            "INSERT INTO settlements (msgid, fixmedins_code, chrg_bchno, psn_no, day, state, result)"
            " VALUES (?, ?, ?, ?, ?, 'settled', ?)",
            [
                env.msgid,
                env.fixmedins_code,
                chrg_bchno,
                person.psn_no,
                at.date().isoformat(),
                json.dumps(body),
            ],
        )
        output = {"setlinfo": body["setlinfo"], "setldetail": body["setldetail"]}
        return _ok(env.msgid, output)

    def _undo(self, conn: sqlite3.Connection, env: Envelope, state: str) -> dict[str, Any]:
        data = env.input.get("data", {})
        omsgid = str(data.get("omsgid", ""))
        row = conn.execute("SELECT * FROM settlements WHERE msgid = ?", [omsgid]).fetchone()
        if row is None or row["state"] != "settled":
            if state == "corrected":
                # 2601 on a message that never committed (or was already undone): nothing to undo.
                return _ok(env.msgid, {"corrected": False})
            raise _Refusal(f"no settled settlement with msgid {omsgid}")
        result = json.loads(row["result"])
        delta_json = result["accumulator_delta"]
        delta = AccumulatorDelta(
            int(delta_json["year"]), {k: Decimal(v) for k, v in delta_json["changes"].items()}
        )
        acc_row = conn.execute(
            "SELECT state FROM accumulators WHERE psn_no = ? AND year = ?", [row["psn_no"], delta.year]
        ).fetchone()
        current = Accumulators.from_json(json.loads(acc_row["state"]) if acc_row else {}, delta.year)
        try:
            after = current.revert(delta)
        except TerminalError as exc:
            raise _Refusal(str(exc)[:200]) from exc
        conn.execute(
            "UPDATE accumulators SET state = ? WHERE psn_no = ? AND year = ?",
            [json.dumps(after.to_json()), row["psn_no"], delta.year],
        )
        conn.execute("UPDATE settlements SET state = ? WHERE msgid = ?", [state, omsgid])
        if state == "corrected":
            return _ok(env.msgid, {"corrected": True})
        info = result["setlinfo"]
        negated = {k: str(-Decimal(v)) if _is_amount(v) else v for k, v in info.items()}
        return _ok(env.msgid, {"setlinfo": negated, "omsgid": omsgid})


def _is_amount(value: Any) -> bool:
    if not isinstance(value, str) or not value or value.count(".") != 1:
        return False
    return value.lstrip("-").replace(".", "", 1).isdigit()


def _perturbed(info: dict[str, Any], amount: Decimal) -> dict[str, Any]:
    """The 'differs' fault: the binding result pays `amount` less from the pooled fund."""
    amount = min(amount, Decimal(info["hifp_pay"]))  # the fund never pays below zero
    if amount <= 0:
        return info
    out = dict(info)
    for name, sign in (("hifp_pay", -1), ("fund_pay_sumamt", -1), ("psn_part_amt", 1), ("psn_cash_pay", 1)):
        out[name] = str((Decimal(out[name]) + sign * amount).quantize(Decimal("0.01")))
    return out


def _person(data: Mapping[str, Any]) -> Person:
    try:
        brdy = data.get("brdy")
        return Person(
            psn_no=str(data["psn_no"]),
            psn_name=str(data["psn_name"]),
            certno=str(data["certno"]),
            insutype=str(data["insutype"]),
            psn_type=str(data["psn_type"]),
            insuplc_admdvs=str(data["insuplc_admdvs"]),
            acct_balc=Decimal(str(data.get("acct_balc", "0.00"))),
            gend=str(data.get("gend", "")),
            brdy=date.fromisoformat(str(brdy)) if brdy else None,
        )
    except (KeyError, ValueError, ArithmeticError) as exc:
        raise ValueError(f"malformed person record: {exc!r}") from exc


def person_json(person: Person) -> dict[str, Any]:
    """A Person as /admin/persons takes it."""
    return {k: (str(v) if v is not None and not isinstance(v, str) else v) for k, v in asdict(person).items()}


def register_people(url: str, people: Sequence[Person]) -> int:
    """Give a running dev upstream its copy of people (demo and bench setup; dev only)."""
    with httpx.Client(base_url=url, timeout=10) as client:
        reply = client.post("/admin/persons", json=[person_json(p) for p in people])
        reply.raise_for_status()
        return int(reply.json()["added"])


def _stamp() -> str:
    return datetime.now(CST).strftime("%Y%m%d%H%M%S%f")[:17]


def _ok(msgid: str, output: dict[str, Any]) -> dict[str, Any]:
    now = _stamp()
    return {
        "infcode": 0,
        "inf_refmsgid": f"{msgid[:6]}{now[:14]}{abs(hash(msgid)) % 10**10:010d}",
        "refmsg_time": now,
        "respond_time": now,
        "err_msg": "",
        "output": output,
    }


def _fail(msgid: str, message: str) -> dict[str, Any]:
    return {**_ok(msgid, {}), "infcode": -1, "err_msg": message[:200]}


def create_app(upstream: Upstream) -> FastAPI:
    """The HTTP face of an Upstream."""
    app = FastAPI(title="medpay dev upstream")

    @app.post(CALL_PATH)
    def call(body: dict[str, Any]) -> JSONResponse:
        faults = upstream.faults
        if faults.down:
            return JSONResponse({"detail": "upstream down"}, status_code=503)
        if faults.slow_s:
            time.sleep(faults.slow_s)
        if upstream.take_fault("http500"):
            return JSONResponse({"detail": "injected failure"}, status_code=500)
        try:
            response, committed = upstream.handle(body)
        except _AuthFailure as exc:
            return JSONResponse(_fail(str(body.get("msgid", "")), str(exc)), status_code=401)
        if committed and upstream.take_fault("lost"):
            # Committed, but the terminal never hears back: it times out with the outcome unknown.
            time.sleep(faults.lost_hang_s)
            return JSONResponse({"detail": "reply lost"}, status_code=504)
        return JSONResponse(response)

    @app.get("/admin/faults")
    def get_faults() -> dict[str, Any]:
        return upstream.faults.model_dump(mode="json")

    @app.post("/admin/faults")
    async def set_faults(request: Request) -> JSONResponse:
        try:
            patch = await request.json()
            upstream.faults = Faults.model_validate({**upstream.faults.model_dump(), **patch})
        except (ValueError, ValidationError) as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        return JSONResponse(upstream.faults.model_dump(mode="json"))

    @app.post("/admin/persons")
    def add_persons(people: list[dict[str, Any]]) -> JSONResponse:
        try:
            return JSONResponse({"added": upstream.add_persons(people)})
        except ValueError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.get("/admin/settlements")
    def list_settlements() -> list[dict[str, Any]]:
        return upstream.settlements()

    @app.get("/admin/terminals")
    def list_terminals() -> list[dict[str, Any]]:
        return upstream.registrations()

    @app.get("/admin/gallery/key")
    def gallery_key() -> dict[str, Any]:
        return upstream.gallery_key().model_dump()

    @app.post("/admin/gallery/enrol")
    def enrol(body: dict[str, Any]) -> JSONResponse:
        try:
            # From JSON text: the strict wire models read dates only from their ISO strings.
            enrolment = Enrolment.model_validate_json(json.dumps(body))
            return JSONResponse({"version": upstream.enrol(enrolment)})
        except (ValueError, ValidationError) as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.post("/admin/gallery/remove")
    def remove(body: dict[str, Any]) -> JSONResponse:
        try:
            removal = GalleryRemoval.model_validate_json(json.dumps(body))
            return JSONResponse({"version": upstream.remove_enrolment(removal)})
        except (ValueError, ValidationError) as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)

    return app


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
    shelf = load_shelf(settlement.policies, load_trusted_keys(settlement.trusted_keys))
    return Upstream(
        db_path,
        load_catalog(settlement.catalog),
        shelf,
        config.terminal.institution_level,
        settlement.policies,
        gallery_signing_key(gallery_key or db_path.with_name(db_path.name + ".gallery_key.pem")),
    )


class ServerThread:
    """Runs an app under uvicorn on 127.0.0.1 in a background thread (tests, bench, demo)."""

    def __init__(self, app: FastAPI, port: int = 0) -> None:
        # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets that say so,
        # and without it every reply waits ~40 ms on the client's delayed ACK.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self.port = int(self._sock.getsockname()[1])
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_s: float = 10.0) -> ServerThread:
        """Start and wait (bounded) until it accepts connections."""
        self._thread.start()
        for _ in range(int(wait_s / 0.01)):
            if self._server.started:
                return self
            time.sleep(0.01)
        raise RuntimeError("dev upstream did not start")

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the reference upstream until interrupted."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--db", type=Path, default=Path("dev_upstream.sqlite"))
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help="terminal config for catalogue/policies"
    )
    parser.add_argument("--persons", type=Path, action="append", default=[], help="JSON list of people")
    parser.add_argument("--down", action="store_true")
    parser.add_argument("--slow", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--http500", type=int, default=0, metavar="N")
    parser.add_argument("--lost", type=int, default=0, metavar="N")
    parser.add_argument("--differs", type=Decimal, default=Decimal("0.00"), metavar="AMOUNT")
    parser.add_argument("--tamper", action="store_true", help="serve altered policy bundles")
    parser.add_argument("--gallery-key", type=Path, help="gallery-delta signing key (default: beside --db)")
    parser.add_argument(
        "--gallery-trusted", type=Path, help="write the trusted-keys file terminals need for gallery deltas"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    upstream = build_upstream(args.db, args.config, args.gallery_key)
    if args.gallery_trusted is not None:
        args.gallery_trusted.write_text(
            upstream.gallery_key().model_dump_json(indent=2) + "\n", encoding="utf-8"
        )
    for path in args.persons:
        upstream.add_persons(json.loads(path.read_text(encoding="utf-8")))
    upstream.faults = Faults(
        down=args.down,
        slow_s=args.slow,
        http500=args.http500,
        lost=args.lost,
        differs=args.differs,
        tamper=args.tamper,
    )
    log.info("dev upstream on http://127.0.0.1:%d (db %s)", args.port, args.db)
    try:
        uvicorn.run(create_app(upstream), host="127.0.0.1", port=args.port, log_level="warning")
    finally:
        upstream.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
