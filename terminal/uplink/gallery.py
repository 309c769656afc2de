"""Signed gallery deltas (9103): verify the signature, then the shape, then apply all in one transaction.

A delta is a signed document of the same form as a policy bundle file, {"bundle": {...}, "signature":
{...}}, verified with the same helpers (terminal/settlement/signing.py) against the trusted keys named
by `[uplink] gallery_trusted_keys`. Its body lists, since the version the terminal asked from, the
consenting enrollees to upsert (person data, benefit facts, consent record, templates, each template
tagged with the id of the embedder model that made it) and the people whose face enrolment must go
(consent withdrawn, no longer insured). Templates of every model are kept, tagged; the terminal compares
only those of the model it runs (docs/identity.md, "Changing the embedder"). Anything wrong (signature, shape,
another terminal's delta, a version the terminal does not hold) raises GalleryDeltaError and changes
nothing; a good delta, the new version and the sync time commit together (terminal/store/gallery.py).
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import sqlite_utils
from numpy.typing import NDArray
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from terminal.domain import Consent, OffsiteFiling, Person
from terminal.errors import GalleryDeltaError, PolicyError, UplinkAuthRequired
from terminal.ports import Clock
from terminal.settlement.context import OpspFiling, PersonBenefits
from terminal.settlement.signing import canonical_json, verify_signature
from terminal.store.gallery import Enrolment, SqliteGallery, gallery_version
from terminal.store.templates import PRE_TAGGING_MODEL_ID, TEMPLATE_DTYPE, StoredTemplate
from terminal.uplink.client import HttpUplink
from terminal.uplink.gallery_history import WireHistory
from terminal.vision.manifest import MODEL_ID_PATTERN

log = logging.getLogger(__name__)

DELTA_KIND = "gallery_delta"
# Each template travels as {model_id, vector}: the vector is little-endian float32, its length the model's.
TEMPLATE_FORMAT = "model-tagged/f32le"
# The format before templates were tagged: bare base64 strings, all from the dlib ResNet (128 values).
# Still read, as templates of PRE_TAGGING_MODEL_ID (the rule migration 0009 applies to stored rows).
LEGACY_TEMPLATE_FORMAT = "dlib_resnet_v1/128/f32le"
LEGACY_TEMPLATE_DIM = 128
MIN_TEMPLATE_DIM, MAX_TEMPLATE_DIM = 64, 2048
MAX_TEMPLATES = 10  # per person and model; a gallery entry is a handful of enrolment captures, not a video
MAX_MODELS = 4  # per person: the model in use and those an upstream migrates from or to


class _Wire(BaseModel):
    # strict: no coercion of "3" to 3 or of "true" to True; amounts travel as strings (no floats).
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class WireFiling(_Wire):
    """A 门特 filing: disease and validity dates (as 5301 returns them)."""

    opsp_dise_code: str = Field(min_length=1, max_length=30, description="opsp disease code")
    begndate: date = Field(description="first day the filing covers")
    enddate: date | None = Field(default=None, description="last day it covers; null = open")


class WireOffsiteFiling(_Wire):
    """An 异地就医备案 the insured place holds: the filed place of care, kind and validity dates."""

    mdtrtarea_admdvs: str = Field(
        pattern=r"^\d{6}$", description="filed place of care; trailing zeros widen it (430000: the province)"
    )
    kind: Literal["filed", "temporary"] = Field(
        description="filed: long-term (resident, posted, referred); temporary: a temporary trip out"
    )
    begndate: date = Field(description="first day the filing covers")
    enddate: date | None = Field(default=None, description="last day it covers; null = open")


class WireBenefits(_Wire):
    """Benefit facts beyond the person record: insurance status, 门特 filings, assistance category."""

    opsp_filings: tuple[WireFiling, ...] = Field(default=(), description="valid 门特 filings")
    assistance_category: str | None = Field(
        default=None, max_length=40, description="key of the policy's assistance.categories, or null"
    )
    cvlserv_flag: bool = Field(default=False, description="civil-servant subsidy (1101 insuinfo)")
    enterprise_supplementary: bool = Field(
        default=False, description="covered by the employer's supplementary plan (hifes_pay)"
    )
    mulaid_balc: str = Field(
        default="0.00",
        pattern=r"^\d{1,12}\.\d{2}$",
        description="balance of the family account bound for 个人账户共济 (acct_mulaid_pay), yuan",
    )
    insurance_active: bool = Field(default=True, description="psn_insu_stas normal, not suspended")
    deceased: bool = Field(default=False, description="recorded as deceased")
    benefit_hints: bool = Field(
        default=False, description="the person agreed to be shown benefits they may be eligible for"
    )
    offsite_filings: tuple[WireOffsiteFiling, ...] = Field(
        default=(), description="异地就医备案 the insured place holds (cross-province care)"
    )

    def to_domain(self) -> PersonBenefits:
        """The settlement engine's view."""
        return PersonBenefits(
            opsp_filings=tuple(
                OpspFiling(f.opsp_dise_code, f.begndate, f.enddate) for f in self.opsp_filings
            ),
            assistance_category=self.assistance_category,
            cvlserv_flag=self.cvlserv_flag,
            enterprise_supplementary=self.enterprise_supplementary,
            mulaid_balc=Decimal(self.mulaid_balc),
            insurance_active=self.insurance_active,
            deceased=self.deceased,
            benefit_hints=self.benefit_hints,
            offsite_filings=tuple(
                OffsiteFiling(f.mdtrtarea_admdvs, f.kind, f.begndate, f.enddate) for f in self.offsite_filings
            ),
        )


class WirePerson(_Wire):
    """terminal.domain.Person as JSON (as the reference upstream's /admin/persons takes it)."""

    psn_no: str = Field(min_length=1, max_length=30, description="person number")
    psn_name: str = Field(min_length=1, max_length=50, description="name")
    certno: str = Field(min_length=1, max_length=50, description="ID number")
    insutype: str = Field(pattern=r"^\d{3}$", description="310 employee basic, 390 resident basic, …")
    psn_type: Literal["active", "retired"] = Field(description="employment status")
    insuplc_admdvs: str = Field(pattern=r"^\d{6}$", description="insured place")
    acct_balc: str = Field(pattern=r"^\d{1,12}\.\d{2}$", description="personal account balance, yuan")
    gend: str = Field(default="", max_length=1, description="1 male, 2 female")
    brdy: date | None = Field(default=None, description="birth date")

    def to_domain(self) -> Person:
        """The terminal's Person."""
        return Person(
            psn_no=self.psn_no,
            psn_name=self.psn_name,
            certno=self.certno,
            insutype=self.insutype,
            psn_type=self.psn_type,
            insuplc_admdvs=self.insuplc_admdvs,
            acct_balc=Decimal(self.acct_balc),
            gend=self.gend,
            brdy=self.brdy,
        )


class WireConsent(_Wire):
    """The separate consent the person gave to face identification, where and by whom it was recorded."""

    granted_at: AwareDatetime = Field(description="when consent was given, with its UTC offset")
    purpose: str = Field(min_length=1, max_length=200, description="the purpose stated to the person")
    operator: str = Field(min_length=1, max_length=50, description="who recorded it")
    text: str = Field(min_length=1, max_length=4000, description="the text shown to the person")


class WireTemplate(_Wire):
    """One template and the embedder model that made it."""

    model_id: str = Field(pattern=MODEL_ID_PATTERN, description="the model's id (manifest: name@sha256[:12])")
    vector: str = Field(description="base64 of the template as little-endian float32")

    @model_validator(mode="after")
    def _decodes(self) -> WireTemplate:
        template_from_wire(self.vector)
        return self

    def stored(self) -> StoredTemplate:
        """What the store keeps."""
        return StoredTemplate(self.model_id, template_from_wire(self.vector))


class GalleryUpsert(_Wire):
    """One consenting enrollee: replaces whatever the terminal held for the person (all models)."""

    psn_no: str = Field(min_length=1, max_length=30, description="person number")
    person: WirePerson = Field(description="person data")
    benefits: WireBenefits = Field(description="benefit facts")
    consent: WireConsent = Field(description="the consent record the templates are kept under")
    templates: tuple[WireTemplate, ...] = Field(
        min_length=1,
        max_length=MAX_TEMPLATES * MAX_MODELS,
        description=f"up to {MAX_TEMPLATES} per model, {MAX_MODELS} models",
    )

    @model_validator(mode="after")
    def _consistent(self) -> GalleryUpsert:
        if self.person.psn_no != self.psn_no:
            raise ValueError("person.psn_no differs from psn_no")
        lengths: dict[str, set[int]] = {}
        for template in self.templates:
            lengths.setdefault(template.model_id, set()).add(len(template.vector))
        if len(lengths) > MAX_MODELS:
            raise ValueError(f"templates of {len(lengths)} models, at most {MAX_MODELS}")
        for model_id, sizes in lengths.items():
            count = sum(1 for t in self.templates if t.model_id == model_id)
            if count > MAX_TEMPLATES:
                raise ValueError(f"{count} templates of model {model_id}, at most {MAX_TEMPLATES}")
            if len(sizes) > 1:
                raise ValueError(f"templates of model {model_id} differ in length")
        return self

    def stored(self) -> list[StoredTemplate]:
        """The templates as tagged float32 vectors."""
        return [template.stored() for template in self.templates]

    def enrolment(self) -> Enrolment:
        """What the store keeps for the person."""
        consent = Consent(
            psn_no=self.psn_no,
            granted_at=self.consent.granted_at,
            purpose=self.consent.purpose,
            operator=self.consent.operator,
            text=self.consent.text,
        )
        return Enrolment(self.person.to_domain(), consent, self.stored(), self.benefits.to_domain())


class GalleryRemoval(_Wire):
    """A person whose face enrolment must be deleted."""

    psn_no: str = Field(min_length=1, max_length=30, description="person number")
    reason: Literal["consent_withdrawn", "not_insured"] = Field(description="why")


class GalleryDelta(_Wire):
    """The signed body of a 9103 answer."""

    kind: Literal["gallery_delta"] = Field(description="so no other signed document passes as a delta")
    fixmedins_code: str = Field(description="institution the delta was made for")
    opter: str = Field(description="terminal the delta was made for")
    since: int = Field(ge=0, description="the version the terminal asked from")
    version: int = Field(ge=0, description="the version the terminal holds once this is applied")
    issued_at: AwareDatetime = Field(description="when the upstream signed it")
    template_format: Literal["model-tagged/f32le"] = Field(
        description="templates as {model_id, vector}; a legacy delta is converted before it gets here"
    )
    upserts: tuple[GalleryUpsert, ...] = Field(description="consenting enrollees, new or changed")
    removals: tuple[GalleryRemoval, ...] = Field(description="face enrolments to delete")
    histories: tuple[WireHistory, ...] = Field(
        default=(), description="per-person history for fund supervision (gallery_history.py)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> GalleryDelta:
        if self.version < self.since:
            raise ValueError(f"version {self.version} is older than since {self.since}")
        if self.version == self.since and (self.upserts or self.removals or self.histories):
            # Else the same changes could be applied again and again (a removed person put back).
            raise ValueError(f"a delta with changes must advance the version (stays at {self.version})")
        names = [u.psn_no for u in self.upserts] + [r.psn_no for r in self.removals]
        if len(set(names)) != len(names):
            raise ValueError("a person appears more than once")
        if len({h.psn_no for h in self.histories}) != len(self.histories):
            raise ValueError("a person's history appears more than once")
        return self


@dataclass(frozen=True)
class GallerySync:
    """What one gallery sync applied."""

    since: int
    version: int
    upserted: int
    removed: int


def template_to_wire(template: NDArray[np.float32]) -> str:
    """Base64 of a template as little-endian float32 (how a template's vector travels in a delta)."""
    vector = np.ascontiguousarray(template, dtype=TEMPLATE_DTYPE)
    if vector.ndim != 1 or not MIN_TEMPLATE_DIM <= vector.shape[0] <= MAX_TEMPLATE_DIM:
        raise ValueError(
            f"a template is one row of {MIN_TEMPLATE_DIM}-{MAX_TEMPLATE_DIM} values, not shape {vector.shape}"
        )
    return base64.b64encode(vector.tobytes()).decode()


def wire_template(template: NDArray[np.float32], model_id: str) -> dict[str, str]:
    """A template as an upsert (and the reference upstream's enrol) carries it: {model_id, vector}."""
    return {"model_id": model_id, "vector": template_to_wire(template)}


def template_from_wire(text: str, dim: int | None = None) -> NDArray[np.float32]:
    """A template from its base64 form; ValueError unless it is finite float32 values of a sane length."""
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError("a template is not base64") from exc
    size = TEMPLATE_DTYPE.itemsize
    if dim is not None and len(raw) != dim * size:
        raise ValueError(f"a template has {len(raw)} bytes, expected {dim * size}")
    if len(raw) % size or not MIN_TEMPLATE_DIM * size <= len(raw) <= MAX_TEMPLATE_DIM * size:
        raise ValueError(
            f"a template has {len(raw)} bytes, expected {MIN_TEMPLATE_DIM}-{MAX_TEMPLATE_DIM} float32 values"
        )
    vector = np.frombuffer(raw, dtype=TEMPLATE_DTYPE).astype(np.float32)
    if not np.all(np.isfinite(vector)):
        raise ValueError("a template holds NaN or infinity")
    return vector


def _tagged(bundle: Any) -> Any:
    """A legacy (untagged, dlib-only) delta body in the tagged form; any other body as it is.

    Runs after the signature was checked over the body as signed; the strict models then see one form.
    """
    if not isinstance(bundle, dict) or bundle.get("template_format") != LEGACY_TEMPLATE_FORMAT:
        return bundle
    upserts = bundle.get("upserts")
    if not isinstance(upserts, list):
        return bundle
    converted = []
    for upsert in upserts:
        templates = upsert.get("templates") if isinstance(upsert, dict) else None
        if isinstance(templates, list):
            if not all(isinstance(t, str) for t in templates):
                raise ValueError("templates of a legacy delta are bare base64 strings")
            for text in templates:
                template_from_wire(text, LEGACY_TEMPLATE_DIM)
            upsert = {
                **upsert,
                "templates": [{"model_id": PRE_TAGGING_MODEL_ID, "vector": t} for t in templates],
            }
        converted.append(upsert)
    return {**bundle, "template_format": TEMPLATE_FORMAT, "upserts": converted}


def verify_delta(document: Any, trusted_keys: Mapping[str, bytes]) -> GalleryDelta:
    """Signature first, then the shape; GalleryDeltaError on any failure."""
    if not isinstance(document, dict) or set(document) != {"bundle", "signature"}:
        raise GalleryDeltaError(
            'gallery delta must be a signed document {"bundle": {...}, "signature": {...}}'
        )
    try:
        verify_signature(document, trusted_keys, what="gallery delta")
    except PolicyError as exc:
        raise GalleryDeltaError(f"refused: {exc}") from exc
    try:
        body = _tagged(document["bundle"])
    except ValueError as exc:
        raise GalleryDeltaError(f"gallery delta is malformed (legacy templates): {exc}") from exc
    try:
        # Validated from canonical JSON bytes, so strict mode reads dates from their ISO strings.
        return GalleryDelta.model_validate_json(canonical_json(body))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise GalleryDeltaError(
            f"gallery delta is malformed ({exc.error_count()} problems): {where}: {first['msg']}"
        ) from exc


def fetch_gallery_delta(
    link: HttpUplink,
    new_msgid: Callable[[datetime], str],
    at: datetime,
    since: int,
    trusted_keys: Mapping[str, bytes],
    max_age_s: float | None = None,
) -> GalleryDelta:
    """9103 since a version; the verified delta, checked to be for this terminal, this version and fresh."""
    output = link.gallery_delta(new_msgid(at), since, at)
    delta = verify_delta(output.get("document"), trusted_keys)
    if max_age_s is not None and abs((at - delta.issued_at).total_seconds()) > max_age_s:
        raise GalleryDeltaError(
            f"gallery delta was issued at {delta.issued_at.isoformat()}, more than {max_age_s:.0f} s from "
            f"this terminal's clock ({at.isoformat()}): stale or replayed, refused"
        )
    identity = link.identity
    if delta.fixmedins_code != identity.get("fixmedins_code") or delta.opter != identity.get("opter"):
        raise GalleryDeltaError(
            f"gallery delta was made for {delta.fixmedins_code}/{delta.opter}, not this terminal"
        )
    if delta.since != since:
        raise GalleryDeltaError(f"gallery delta starts at version {delta.since}, asked from {since}")
    return delta


def apply_gallery_delta(gallery: SqliteGallery, delta: GalleryDelta, at: datetime) -> GallerySync:
    """Hand a verified delta to the store, which applies all of it in one transaction or none of it."""
    gallery.apply_delta(
        delta.since,
        delta.version,
        [upsert.enrolment() for upsert in delta.upserts],
        [(removal.psn_no, removal.reason) for removal in delta.removals],
        at,
        [history.to_domain() for history in delta.histories],
    )
    log.info(
        "gallery v%d → v%d: %d upserted, %d removed",
        delta.since,
        delta.version,
        len(delta.upserts),
        len(delta.removals),
    )
    return GallerySync(delta.since, delta.version, len(delta.upserts), len(delta.removals))


def sync_gallery(
    db: sqlite_utils.Database,
    link: HttpUplink,
    gallery: SqliteGallery,
    new_msgid: Callable[[datetime], str],
    clock: Clock,
    trusted_keys: Mapping[str, bytes],
    max_age_s: float | None = None,
) -> GallerySync:
    """Sign in if needed, fetch the delta since the version held, verify it (fresh) and apply it."""
    if not link.sign_no:
        now = clock.now()
        link.sign_in(new_msgid(now), now)
    try:
        delta = fetch_gallery_delta(
            link, new_msgid, clock.now(), gallery_version(db), trusted_keys, max_age_s
        )
    except UplinkAuthRequired:
        # A new day's sign_no or a restarted upstream: sign in once more; a fetch changes nothing upstream.
        now = clock.now()
        link.sign_in(new_msgid(now), now)
        delta = fetch_gallery_delta(
            link, new_msgid, clock.now(), gallery_version(db), trusted_keys, max_age_s
        )
    return apply_gallery_delta(gallery, delta, clock.now())
