"""Enrolled people, their consent and their encrypted templates, in the terminal database."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import sqlite_utils
from numpy.typing import NDArray

from terminal.domain import CertType, Consent, IdentityClaim, OffsiteFiling, Person, PersonHistory
from terminal.errors import (
    ConsentError,
    GalleryDeltaError,
    IdentityError,
    NotEnrolledForModelError,
    StoreError,
    UnknownPersonError,
)
from terminal.ports import Clock
from terminal.settlement.context import OpspFiling, PersonBenefits
from terminal.store import audit, people
from terminal.store.db import immediate
from terminal.store.device_key import DeviceKeys
from terminal.store.keys import TemplateCipher
from terminal.store.person_history import save_histories
from terminal.store.template_feed import touch_templates
from terminal.store.templates import (
    CONSENTED_TEMPLATES,
    StoredTemplate,
    insert_templates,
    open_template,
)

# counters rows a gallery sync writes (apply_delta): the version the local gallery holds,
# and when the last delta was applied (epoch s); the offline limits read the latter through last_synced.
GALLERY_VERSION = "gallery_version"
GALLERY_LAST_SYNC = "gallery_last_sync"

# Why a face enrolment is removed: the person withdrew consent, or is no longer insured (the upstream says).
RemovalReason = Literal["consent_withdrawn", "not_insured"]


@dataclass(frozen=True)
class Enrolment:
    """One consenting person exactly as a gallery delta brings them: record, consent, templates, benefits.

    The templates may come from several models (an upstream migrating to another embedder holds both);
    all are kept, tagged, and each terminal compares only those of the model it runs.
    """

    person: Person
    consent: Consent
    templates: Sequence[StoredTemplate]
    benefits: PersonBenefits


class SqliteGallery:
    """The Gallery port over SQLite; templates are decrypted only in memory."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        cipher: TemplateCipher,
        clock: Clock,
        keys: DeviceKeys | None = None,
    ) -> None:
        self._db = db
        self._cipher = cipher
        self._clock = clock
        # Without explicit keys: the device key in the database file's folder.
        self._keys = keys if keys is not None else people.device_keys(db)

    def upsert_person(self, person: Person) -> None:
        """Record or update a person's insurance data (no face data involved); personal fields sealed."""
        people.upsert_person(self._db, self._keys, person)
        # a new ID number moves the person to another bucket of the index
        touch_templates(self._db, person.psn_no)

    def link_credential(self, cert_type: CertType, cert_no: str, psn_no: str) -> None:
        """Record that a QR token (01) or social-security card number (03) belongs to a person (its HMAC)."""
        people.link_credential(self._db, self._keys, cert_type, cert_no, psn_no)

    def enroll(
        self, person: Person, consent: Consent, templates: Sequence[NDArray[np.float32]], model_id: str
    ) -> None:
        """Store a person, the consent record and the templates model_id made, in one transaction."""
        tagged = [StoredTemplate(model_id, vector) for vector in templates]
        _check_enrolment(person, consent, tagged)
        with self._db.atomic():
            self.upsert_person(person)
            self._add_templates(person.psn_no, self._insert_consent(consent), tagged)
            audit.append(
                self._db,
                self._clock.now(),
                consent.operator,
                "enroll",
                person.psn_no,
                {"templates": len(templates), "purpose": consent.purpose, "model": model_id},
            )

    def replace_enrolment(
        self,
        person: Person,
        consent: Consent,
        templates: Sequence[StoredTemplate],
        benefits: PersonBenefits,
        actor: str,
    ) -> None:
        """Make a person's record, benefits, consent and templates exactly these (gallery sync); atomic."""
        _check_enrolment(person, consent, templates)
        with self._db.atomic():
            self.upsert_person(person)
            self.set_benefits(person.psn_no, benefits)
            self._db.execute("DELETE FROM templates WHERE psn_no = ?", [person.psn_no])
            # The same consent record arrives with every update of the person: keep one row for it.
            same = list(
                self._db.query(
                    "SELECT id FROM consents WHERE psn_no = ? AND granted_at = ? AND purpose = ?"
                    " AND operator = ? AND text = ? AND withdrawn_at IS NULL",
                    [
                        consent.psn_no,
                        consent.granted_at.isoformat(),
                        consent.purpose,
                        consent.operator,
                        consent.text,
                    ],
                )
            )
            consent_id = int(same[0]["id"]) if same else self._insert_consent(consent)
            self._add_templates(person.psn_no, consent_id, templates)
            audit.append(
                self._db,
                self._clock.now(),
                actor,
                "enroll",
                person.psn_no,
                {
                    "templates": len(templates),
                    "purpose": consent.purpose,
                    "consent_by": consent.operator,
                    "models": _per_model(templates),
                },
            )

    def withdraw_consent(self, psn_no: str, operator: str) -> int:
        """Withdraw consent and delete the person's templates; returns how many were deleted."""
        return self.remove_enrolment(psn_no, "consent_withdrawn", operator)

    def remove_enrolment(self, psn_no: str, reason: RemovalReason, actor: str) -> int:
        """Delete a person's templates (consent withdrawn, or no longer insured); how many were deleted."""
        with self._db.atomic():
            now = self._clock.now()
            if reason == "consent_withdrawn":
                self._db.execute(
                    "UPDATE consents SET withdrawn_at = ? WHERE psn_no = ? AND withdrawn_at IS NULL",
                    [now.isoformat(), psn_no],
                )
            deleted = int(self._db.execute("DELETE FROM templates WHERE psn_no = ?", [psn_no]).rowcount)
            touch_templates(self._db, psn_no)
            detail: dict[str, Any] = {"templates_deleted": deleted}
            if reason == "not_insured":
                # Linked QR tokens and card numbers would still settle for them: drop those too, and
                # mark the insurance inactive so an ID-number checkout is refused by the safety checks.
                detail["credentials_deleted"] = people.unlink_credentials(self._db, psn_no)
                if people.person_exists(self._db, psn_no):
                    self.set_benefits(psn_no, replace(self.benefits_of(psn_no), insurance_active=False))
            action = "withdraw-consent" if reason == "consent_withdrawn" else "not-insured"
            audit.append(self._db, now, actor, action, psn_no, detail)
        return deleted

    def set_benefits(self, psn_no: str, benefits: PersonBenefits) -> None:
        """Record what 1101/5301 say beyond the person record: 门特 filings, assistance, insurance status."""
        self._db.execute(
            "INSERT INTO person_benefits (psn_no, data, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT(psn_no) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
            [psn_no, json.dumps(_benefits_json(benefits), sort_keys=True), self._clock.now().isoformat()],
        )

    def benefits_of(self, psn_no: str) -> PersonBenefits:
        """A person's benefit facts; defaults (insured, no filings, no assistance) when none recorded."""
        rows = list(self._db.query("SELECT data FROM person_benefits WHERE psn_no = ?", [psn_no]))
        return _benefits(json.loads(rows[0]["data"])) if rows else PersonBenefits()

    def apply_delta(
        self,
        since: int,
        version: int,
        upserts: Sequence[Enrolment],
        removals: Sequence[tuple[str, RemovalReason]],
        at: datetime,
        histories: Sequence[PersonHistory] = (),
    ) -> None:
        """Apply a verified gallery delta, its new version and the sync time in one transaction.

        `histories` (the upstream's per-person history) replace what was held for those people.

        GalleryDeltaError, with nothing applied, when it does not start at the version held or
        contradicts the gallery (e.g. an ID number already held by another person).
        """
        try:
            with immediate(self._db):
                held = gallery_version(self._db)
                if held != since:
                    # Another sync applied something in between: this delta no longer follows what we hold.
                    raise GalleryDeltaError(
                        f"gallery delta starts at version {since}, the terminal holds {held}"
                    )
                for upsert in upserts:
                    self.replace_enrolment(
                        upsert.person, upsert.consent, upsert.templates, upsert.benefits, "upstream"
                    )
                for psn_no, reason in removals:
                    self.remove_enrolment(psn_no, reason, "upstream")
                save_histories(self._db, histories, at)
                self._set_counter(GALLERY_VERSION, version)
                self._set_counter(GALLERY_LAST_SYNC, int(at.timestamp()))
                audit.append(
                    self._db,
                    at,
                    "uplink",
                    "gallery-sync",
                    f"v{version}",
                    {
                        "since": since,
                        "upserts": len(upserts),
                        "removals": len(removals),
                        **({"histories": len(histories)} if histories else {}),
                    },
                )
        except (sqlite3.IntegrityError, StoreError, IdentityError) as exc:
            raise GalleryDeltaError(f"gallery delta cannot be applied, nothing was: {exc}") from exc

    def last_synced(self) -> datetime | None:
        """When a gallery delta was last applied (UTC), None if never."""
        return last_gallery_sync(self._db)

    def templates_of(self, psn_no: str, model_id: str) -> list[NDArray[np.float32]]:
        """Decrypted templates model_id made of one consenting person.

        UnknownPersonError when the person has none at all; NotEnrolledForModelError when all of theirs
        come from other models (the embedder was changed and they were not re-enrolled).
        """
        rows = list(self._db.query(CONSENTED_TEMPLATES + " AND t.psn_no = ?", [psn_no]))
        if not rows:
            raise UnknownPersonError(f"no consenting face enrolment for person {psn_no}")
        mine = [row for row in rows if row["model_id"] == model_id]
        if not mine:
            others = ", ".join(sorted({row["model_id"] for row in rows}))
            raise NotEnrolledForModelError(
                f"person {psn_no} is not enrolled for model {model_id} (templates of {others} only): "
                "re-enrol them (docs/identity.md, Changing the embedder)"
            )
        return [open_template(self._cipher, row) for row in mine]

    def all_templates(self, model_id: str) -> tuple[list[str], NDArray[np.float32]]:
        """All consenting people's templates model_id made, as (owners, N×D matrix); others never."""
        owners: list[str] = []
        vectors: list[NDArray[np.float32]] = []
        for row in self._db.query(CONSENTED_TEMPLATES + " AND t.model_id = ? ORDER BY t.id", [model_id]):
            owners.append(row["psn_no"])
            vectors.append(open_template(self._cipher, row))
        if not vectors:
            return owners, np.zeros((0, 0), dtype=np.float32)
        if len({vector.shape for vector in vectors}) != 1:
            raise StoreError(f"templates of model {model_id} differ in length; the gallery is inconsistent")
        return owners, np.stack(vectors)

    def size(self) -> int:
        """How many people have consenting face enrolments (of any model)."""
        return enrolled_count(self._db, consenting_only=True)

    def person(self, psn_no: str) -> Person:
        """One person's record; UnknownPersonError when absent."""
        found = people.find_person(self._db, self._keys, psn_no)
        if found is None:
            raise UnknownPersonError(f"person {psn_no} is not known to this terminal")
        return found

    def person_by_claim(self, claim: IdentityClaim) -> Person:
        """Resolve a claim (psn_no, ID number, linked QR token or card number) to a person, by keyed hash."""
        if claim.psn_no:
            return self.person(claim.psn_no)
        if claim.mdtrt_cert_type is CertType.ID_NUMBER:
            found = people.person_by_certno(self._db, self._keys, claim.mdtrt_cert_no)
        else:
            # QR tokens and card numbers resolve through credentials the upstream (or a technician) linked.
            found = people.person_by_credential(
                self._db, self._keys, claim.mdtrt_cert_type, claim.mdtrt_cert_no
            )
        if found is not None:
            return found
        raise UnknownPersonError("the credential does not match a person known to this terminal")

    def _set_counter(self, name: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            [name, value],
        )

    def _insert_consent(self, consent: Consent) -> int:
        cursor = self._db.execute(
            "INSERT INTO consents (psn_no, granted_at, purpose, operator, text) VALUES (?, ?, ?, ?, ?)",
            [consent.psn_no, consent.granted_at.isoformat(), consent.purpose, consent.operator, consent.text],
        )
        return int(cursor.lastrowid or 0)

    def _add_templates(self, psn_no: str, consent_id: int, templates: Sequence[StoredTemplate]) -> None:
        insert_templates(self._db, self._cipher, psn_no, consent_id, templates, self._clock.now().isoformat())
        # the serving terminal's index reloads this person (store/template_feed.py)
        touch_templates(self._db, psn_no)


def gallery_version(db: sqlite_utils.Database) -> int:
    """The gallery version this terminal holds (0 before the first sync)."""
    rows = list(db.query("SELECT value FROM counters WHERE name = ?", [GALLERY_VERSION]))
    return int(rows[0]["value"]) if rows else 0


def last_gallery_sync(db: sqlite_utils.Database, tz: tzinfo = UTC) -> datetime | None:
    """When a gallery delta was last applied, None if never."""
    rows = list(db.query("SELECT value FROM counters WHERE name = ?", [GALLERY_LAST_SYNC]))
    return datetime.fromtimestamp(int(rows[0]["value"]), tz=tz) if rows else None


def enrolled_count(db: sqlite_utils.Database, consenting_only: bool = False) -> int:
    """People with templates stored, counted without the template key (so doctor needs no key for it)."""
    if consenting_only:
        sql = "SELECT COUNT(DISTINCT t.psn_no) AS n FROM " + _CONSENTED_JOIN
    else:
        sql = "SELECT COUNT(DISTINCT psn_no) AS n FROM templates"
    return int(next(iter(db.query(sql)))["n"])


_CONSENTED_JOIN = "templates t JOIN consents c ON c.id = t.consent_id WHERE c.withdrawn_at IS NULL"


def _per_model(templates: Sequence[StoredTemplate]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for template in templates:
        counts[template.model_id] = counts.get(template.model_id, 0) + 1
    return counts


def _check_enrolment(person: Person, consent: Consent, templates: Sequence[StoredTemplate]) -> None:
    if consent.psn_no != person.psn_no:
        raise ConsentError("the consent record belongs to another person")
    if not consent.text.strip() or not consent.purpose.strip():
        raise ConsentError("consent needs the text shown to the person and the purpose")
    if not templates:
        raise StoreError("enrolment needs at least one template")
    if any(not template.model_id for template in templates):
        raise StoreError("every template must name the model that made it")


def _benefits_json(benefits: PersonBenefits) -> dict[str, Any]:
    return {
        "opsp_filings": [
            {
                "opsp_dise_code": f.opsp_dise_code,
                "begndate": f.begndate.isoformat(),
                "enddate": f.enddate.isoformat() if f.enddate else None,
            }
            for f in benefits.opsp_filings
        ],
        "assistance_category": benefits.assistance_category,
        "cvlserv_flag": benefits.cvlserv_flag,
        "enterprise_supplementary": benefits.enterprise_supplementary,
        "mulaid_balc": str(benefits.mulaid_balc),
        "insurance_active": benefits.insurance_active,
        "deceased": benefits.deceased,
        # Written only when set, so rows of people who never opted in read exactly as before.
        **({"benefit_hints": True} if benefits.benefit_hints else {}),
        **(
            {"offsite_filings": [_offsite_json(f) for f in benefits.offsite_filings]}
            if benefits.offsite_filings
            else {}
        ),
    }


def _offsite_json(filing: OffsiteFiling) -> dict[str, Any]:
    return {
        "mdtrtarea_admdvs": filing.mdtrtarea_admdvs,
        "kind": filing.kind,
        "begndate": filing.begndate.isoformat(),
        "enddate": filing.enddate.isoformat() if filing.enddate else None,
    }


def _benefits(data: dict[str, Any]) -> PersonBenefits:
    return PersonBenefits(
        opsp_filings=tuple(
            OpspFiling(
                f["opsp_dise_code"],
                date.fromisoformat(f["begndate"]),
                date.fromisoformat(f["enddate"]) if f["enddate"] else None,
            )
            for f in data["opsp_filings"]
        ),
        assistance_category=data["assistance_category"],
        cvlserv_flag=bool(data["cvlserv_flag"]),
        # Rows stored before these two facts travelled in the delta lack them: no plan, no family balance.
        enterprise_supplementary=bool(data.get("enterprise_supplementary", False)),
        mulaid_balc=Decimal(data.get("mulaid_balc", "0.00")),
        insurance_active=bool(data["insurance_active"]),
        deceased=bool(data["deceased"]),
        benefit_hints=bool(data.get("benefit_hints", False)),
        offsite_filings=tuple(
            OffsiteFiling(
                f["mdtrtarea_admdvs"],
                f["kind"],
                date.fromisoformat(f["begndate"]),
                date.fromisoformat(f["enddate"]) if f["enddate"] else None,
            )
            for f in data.get("offsite_filings", ())
        ),
    )
