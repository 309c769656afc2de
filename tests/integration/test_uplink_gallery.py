"""Signed gallery deltas and terminal registration against the real reference upstream on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
import sqlite_utils
from numpy.typing import NDArray

from devkit.serving import ServerThread
from devkit.upstream.state import Upstream
from terminal.app import Terminal, sync_once, uplink_backoff
from terminal.cli.sync_report import describe
from terminal.clock import CST
from terminal.config import DEFAULT_CONFIG, UplinkSection, load
from terminal.demo_data import face_crop
from terminal.domain import CertType, Frame, OffsiteFiling
from terminal.errors import GalleryDeltaError, NotEnrolledForModelError, UnknownPersonError, UplinkRefused
from terminal.operations import identify_faces
from terminal.settlement.context import OpspFiling
from terminal.settlement.signing import parse_trusted_keys
from terminal.store.db import open_db
from terminal.store.gallery import SqliteGallery, gallery_version, last_gallery_sync
from terminal.store.keys import TemplateCipher, create_key, read_key
from terminal.store.policy_files import load_trusted_keys
from terminal.uplink.client import HttpUplink
from terminal.uplink.gallery import (
    fetch_gallery_delta,
    sync_gallery,
    wire_template,
)
from terminal.uplink.registration import identity
from terminal.uplink.signing import uplink_keys
from tests.conftest import insightface_image
from tests.fakes import FixedClock, SteppingClock
from tests.integration.uplink_kit import PEOPLE, set_faults, uplink

A, B, C = (p.psn_no for p in PEOPLE)
MODEL = "dlib_resnet@e0b69024dfe5"


@dataclass
class Kiosk:
    """The terminal side: its data folder, database, gallery and uplink."""

    data_dir: Path
    db: sqlite_utils.Database
    gallery: SqliteGallery
    link: HttpUplink
    clock: SteppingClock
    trusted: dict[str, bytes]
    counter: Iterator[int]

    def msgid(self, at: datetime) -> str:
        """A fresh msgid."""
        return f"H43030200001{at:%Y%m%d%H%M%S}{next(self.counter):04d}"

    def sync(self) -> Any:
        """One gallery sync."""
        return sync_gallery(self.db, self.link, self.gallery, self.msgid, self.clock, self.trusted)


def _trusted(url: str) -> dict[str, bytes]:
    with httpx.Client(base_url=url, timeout=5) as client:
        reply = client.get("/admin/gallery/key")
        reply.raise_for_status()
        return parse_trusted_keys(reply.content)


@pytest.fixture
def kiosk(tmp_path: Path, upstream: tuple[Upstream, ServerThread]) -> Iterator[Kiosk]:
    """A registered, signed-in terminal over its own SQLite file, trusting the upstream's delta key."""
    _, server = upstream
    data_dir = tmp_path / "terminal"
    create_key(data_dir)
    clock = SteppingClock()
    db = open_db(data_dir)
    link = uplink(data_dir, server.url)
    k = Kiosk(
        data_dir,
        db,
        SqliteGallery(db, TemplateCipher(read_key(data_dir)), clock),
        link,
        clock,
        _trusted(server.url),
        iter(range(1, 10_000)),
    )
    link.register(k.msgid(clock.now()), clock.now())
    try:
        yield k
    finally:
        link.close()
        db.close()


def _vector(seed: int) -> NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=128).astype(np.float32)
    return (v / np.linalg.norm(v) * 0.6).astype(np.float32)


def _enrol(
    url: str,
    psn_no: str,
    templates: list[NDArray[np.float32]],
    model_id: str = MODEL,
    keep_other_models: bool = True,
    **benefits: Any,
) -> int:
    body = {
        "psn_no": psn_no,
        "consent": {
            "granted_at": "2025-05-20T10:00:00+08:00",
            "purpose": "刷脸就医身份核验",
            "operator": "enrol-desk-3",
            "text": "本人同意在本院自助机上保存并使用本人人脸特征用于医保结算身份核验。",
        },
        "templates": [wire_template(t, model_id) for t in templates],
        "benefits": benefits,
        "keep_other_models": keep_other_models,
    }
    with httpx.Client(base_url=url, timeout=5) as client:
        reply = client.post("/admin/gallery/enrol", json=body)
        reply.raise_for_status()
        return int(reply.json()["version"])


def _remove(url: str, psn_no: str, reason: str) -> int:
    with httpx.Client(base_url=url, timeout=5) as client:
        reply = client.post("/admin/gallery/remove", json={"psn_no": psn_no, "reason": reason})
        reply.raise_for_status()
        return int(reply.json()["version"])


def _template_rows(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return list(db.query("SELECT psn_no, nonce, ciphertext FROM templates ORDER BY psn_no, id"))


def test_first_sync_fills_the_gallery_with_encrypted_templates_person_data_and_benefits(
    kiosk: Kiosk, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    a_templates = [_vector(1), _vector(2)]
    _enrol(server.url, A, a_templates)
    filing = {"opsp_dise_code": "M03900", "begndate": "2025-01-01", "enddate": None}
    offsite = {"mdtrtarea_admdvs": "430300", "kind": "temporary", "begndate": "2025-05-01", "enddate": None}
    version = _enrol(
        server.url,
        B,
        [_vector(3)],
        opsp_filings=[filing],
        assistance_category="dibao",
        offsite_filings=[offsite],
    )

    before = kiosk.clock.at
    applied = kiosk.sync()

    assert (applied.since, applied.version, applied.upserted, applied.removed) == (0, version, 2, 0)
    assert gallery_version(kiosk.db) == version
    synced = last_gallery_sync(kiosk.db, CST)
    assert synced is not None and before < synced <= kiosk.clock.at
    assert kiosk.gallery.size() == 2
    got = kiosk.gallery.templates_of(A, MODEL)
    assert all(np.array_equal(x, y) for x, y in zip(got, a_templates, strict=True))
    assert kiosk.gallery.person(B) == PEOPLE[1]
    benefits = kiosk.gallery.benefits_of(B)
    assert benefits.opsp_filings == (OpspFiling("M03900", date(2025, 1, 1), None),)
    assert benefits.assistance_category == "dibao" and benefits.insurance_active
    # the 异地就医备案 the reference upstream holds reaches checkout's insured-place rule
    assert benefits.offsite_filings == (OffsiteFiling("430300", "temporary", date(2025, 5, 1), None),)
    # At rest the template bytes appear nowhere in the clear.
    for row in _template_rows(kiosk.db):
        assert a_templates[0].tobytes() not in bytes(row["ciphertext"])
    consents = list(kiosk.db.query("SELECT psn_no, operator, withdrawn_at FROM consents ORDER BY psn_no"))
    assert [(c["psn_no"], c["operator"], c["withdrawn_at"]) for c in consents] == [
        (A, "enrol-desk-3", None),
        (B, "enrol-desk-3", None),
    ]


def test_second_sync_applies_only_the_changes_since_its_version_including_removals(
    kiosk: Kiosk, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    _enrol(server.url, A, [_vector(1)])
    _enrol(server.url, B, [_vector(2)])
    first = kiosk.sync().version
    kiosk.gallery.link_credential(CertType.SOCIAL_SECURITY_CARD, "CARD-B-0001", B)
    _remove(server.url, A, "consent_withdrawn")
    _remove(server.url, B, "not_insured")
    latest = _enrol(server.url, C, [_vector(4)])

    delta = fetch_gallery_delta(kiosk.link, kiosk.msgid, kiosk.clock.now(), first, kiosk.trusted)
    assert (delta.since, delta.version) == (first, latest)
    assert [u.psn_no for u in delta.upserts] == [C]
    assert {(r.psn_no, r.reason) for r in delta.removals} == {(A, "consent_withdrawn"), (B, "not_insured")}

    applied = kiosk.sync()

    assert (applied.since, applied.version, applied.upserted, applied.removed) == (first, latest, 1, 2)
    assert kiosk.gallery.size() == 1
    for gone in (A, B):
        with pytest.raises(UnknownPersonError):
            kiosk.gallery.templates_of(gone, MODEL)
    assert kiosk.gallery.templates_of(C, MODEL)
    withdrawn = list(kiosk.db.query("SELECT withdrawn_at FROM consents WHERE psn_no = ?", [A]))
    assert withdrawn and all(r["withdrawn_at"] for r in withdrawn)
    assert not kiosk.gallery.benefits_of(B).insurance_active
    assert not list(kiosk.db.query("SELECT 1 FROM credentials WHERE psn_no = ?", [B]))
    # Insurance data stays for the credential path; only the face data is gone.
    assert kiosk.gallery.person(A) == PEOPLE[0]
    # Nothing new upstream: an empty delta at the same version, and the sync time still advances.
    before = last_gallery_sync(kiosk.db)
    again = kiosk.sync()
    assert (again.since, again.version, again.upserted, again.removed) == (latest, latest, 0, 0)
    after = last_gallery_sync(kiosk.db)
    assert before is not None and after is not None and after > before


@pytest.mark.parametrize("held", [False, True], ids=["from-empty", "after-a-sync"])
def test_tampered_delta_is_refused_and_neither_gallery_nor_version_changes(
    kiosk: Kiosk, upstream: tuple[Upstream, ServerThread], held: bool
) -> None:
    _, server = upstream
    if held:
        _enrol(server.url, A, [_vector(1)])
        kiosk.sync()
    _enrol(server.url, B, [_vector(2)], assistance_category=None)
    version, synced, rows = gallery_version(kiosk.db), last_gallery_sync(kiosk.db), _template_rows(kiosk.db)
    set_faults(server.url, gallery_tamper=True)

    with pytest.raises(GalleryDeltaError, match="altered"):
        kiosk.sync()

    assert gallery_version(kiosk.db) == version
    assert last_gallery_sync(kiosk.db) == synced
    assert _template_rows(kiosk.db) == rows
    assert not list(kiosk.db.query("SELECT 1 FROM persons WHERE psn_no = ?", [B]))
    # The genuine delta still applies afterwards.
    set_faults(server.url, gallery_tamper=False)
    assert kiosk.sync().upserted == 1
    assert kiosk.gallery.templates_of(B, MODEL)


def test_malformed_but_correctly_signed_delta_is_refused_and_nothing_is_applied(
    kiosk: Kiosk, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    _enrol(server.url, A, [_vector(1)])
    _enrol(server.url, B, [_vector(2)])
    set_faults(server.url, gallery_malformed=True)

    with pytest.raises(GalleryDeltaError, match="malformed"):
        kiosk.sync()

    assert gallery_version(kiosk.db) == 0 and last_gallery_sync(kiosk.db) is None
    assert kiosk.gallery.size() == 0
    assert not list(kiosk.db.query("SELECT 1 FROM persons"))


def test_delta_signed_by_a_key_the_terminal_does_not_trust_is_refused(
    kiosk: Kiosk, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    _enrol(server.url, A, [_vector(1)])
    kiosk.trusted = load_trusted_keys(load(DEFAULT_CONFIG).settlement.trusted_keys)  # the policy key only

    with pytest.raises(GalleryDeltaError, match="does not trust"):
        kiosk.sync()
    assert kiosk.gallery.size() == 0 and gallery_version(kiosk.db) == 0


def test_registering_twice_is_idempotent_and_another_key_is_refused(
    tmp_path: Path, kiosk: Kiosk, upstream: tuple[Upstream, ServerThread]
) -> None:
    up, server = upstream
    first = kiosk.link.register(
        kiosk.msgid(kiosk.clock.now()), kiosk.clock.now()
    )  # the fixture registered once
    second = kiosk.link.register(kiosk.msgid(kiosk.clock.now()), kiosk.clock.now())
    assert first == second
    terminal = load(DEFAULT_CONFIG).terminal
    assert (first["terminal_id"], first["fixmedins_code"], first["admdvs"]) == (
        terminal.terminal_id,
        terminal.fixmedins_code,
        terminal.mdtrtarea_admvs,
    )
    assert len(up.registrations()) == 1

    impostor = uplink(tmp_path / "impostor", server.url)  # same terminal id, a different key
    try:
        with pytest.raises(UplinkRefused, match="another artefact_key, public_key"):
            impostor.register(kiosk.msgid(kiosk.clock.now()), kiosk.clock.now())
        with pytest.raises(UplinkRefused, match="another key"):
            impostor.sign_in(kiosk.msgid(kiosk.clock.now()), kiosk.clock.now())
    finally:
        impostor.close()
    assert [r["public_key"] for r in up.registrations()] == [first["public_key"]]


def test_an_unregistered_terminal_gets_no_gallery(
    tmp_path: Path, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    _enrol(server.url, A, [_vector(1)])
    clock, counter = SteppingClock(), iter(range(1, 100))
    link = uplink(tmp_path / "stranger", server.url)
    try:
        link.sign_in(f"H43030200001{clock.now():%Y%m%d%H%M%S}0001", clock.now())
        with pytest.raises(UplinkRefused, match="not registered"):
            link.gallery_delta(f"H43030200001{clock.now():%Y%m%d%H%M%S}{next(counter):04d}", 0, clock.now())
    finally:
        link.close()


def test_medpay_sync_pulls_the_gallery_after_delivering_the_outbox(
    kiosk: Kiosk, upstream: tuple[Upstream, ServerThread]
) -> None:
    up, server = upstream
    version = _enrol(server.url, A, [_vector(1)])
    keys_file = kiosk.data_dir / "gallery_keys.json"
    keys_file.write_text(up.gallery_key().model_dump_json(), encoding="utf-8")
    section = UplinkSection(url=server.url, gallery_trusted_keys=keys_file)
    terminal = load(DEFAULT_CONFIG).terminal

    report, _ = sync_once(
        kiosk.db, kiosk.data_dir, terminal, section, kiosk.clock, kiosk.msgid, backoff=uplink_backoff(section)
    )

    assert report.stopped_on == ""
    assert gallery_version(kiosk.db) == version and kiosk.gallery.size() == 1
    assert any(line.startswith(f"gallery version {version}") for line in describe(report, kiosk.db))


def test_re_enrolment_for_a_new_model_keeps_the_old_ones_until_the_upstream_drops_them(
    kiosk: Kiosk, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    new = "sface@0ba9fbfa01b5"
    _enrol(server.url, A, [_vector(1)])
    _enrol(server.url, A, [_vector(2), _vector(3)], new)
    kiosk.sync()
    assert len(kiosk.gallery.templates_of(A, MODEL)) == 1
    assert len(kiosk.gallery.templates_of(A, new)) == 2
    # Re-enrolling one model replaces that model's templates only.
    _enrol(server.url, A, [_vector(5)], MODEL)
    kiosk.sync()
    assert np.array_equal(kiosk.gallery.templates_of(A, MODEL)[0], _vector(5))
    assert len(kiosk.gallery.templates_of(A, new)) == 2
    # The end of the migration: the old model's templates go, on the upstream and at the next sync.
    _enrol(server.url, A, [_vector(4)], new, keep_other_models=False)
    kiosk.sync()
    with pytest.raises(NotEnrolledForModelError):
        kiosk.gallery.templates_of(A, MODEL)
    assert [t.tolist() for t in kiosk.gallery.templates_of(A, new)] == [_vector(4).tolist()]


def test_the_upstream_refuses_more_templates_of_a_model_than_a_terminal_takes(
    upstream: tuple[Upstream, ServerThread],
) -> None:
    _, server = upstream
    with pytest.raises(httpx.HTTPStatusError) as info:
        _enrol(server.url, A, [_vector(i) for i in range(11)])
    assert info.value.response.status_code == 422


# --- identification with real templates (real models) ---------------------------------------------


def _frame(image: NDArray[np.uint8], clock: FixedClock) -> Frame:
    return Frame(image=image, source="test", captured_at=clock.now())


@pytest.mark.usefixtures("require_models")
def test_a_person_enrolled_through_the_delta_is_identified_one_to_one_and_one_to_n(
    terminal: Terminal, clock: FixedClock, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    image = cv2.imread(str(insightface_image("t1.jpg")))
    boxes = [
        (o.box.x1, o.box.y1, o.box.x2, o.box.y2) for o in terminal.face_stage.observe(_frame(image, clock))
    ]
    # Enrolment happens at the centre's desk: templates computed there from a crop of each face.
    for person, box in zip(PEOPLE, boxes[:3], strict=True):
        crop = face_crop(image, box, 0.6)
        template = terminal.face_stage.observe_primary(_frame(crop, clock)).template
        _enrol(server.url, person.psn_no, [template], terminal.face_stage.embedder.model_id)
    counter = iter(range(1, 100))

    def msgid(at: datetime) -> str:
        return f"H43030200001{at:%Y%m%d%H%M%S}{next(counter):04d}"

    link = HttpUplink(server.url, uplink_keys(terminal.data_dir), identity(load(DEFAULT_CONFIG).terminal))
    try:
        link.register(msgid(clock.now()), clock.now())
        sync_gallery(terminal.db, link, terminal.gallery, msgid, clock, _trusted(server.url))
    finally:
        link.close()
    assert terminal.gallery.size() == 3

    probe = face_crop(image, boxes[1], 1.0)
    probe = cv2.resize(probe, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)
    assert [r.psn_no for r in identify_faces(terminal, _frame(probe, clock))] == [B]
    assert identify_faces(terminal, _frame(probe, clock), claim_psn_no=B)[0].psn_no == B
    assert identify_faces(terminal, _frame(probe, clock), claim_psn_no=A)[0].psn_no is None
    # A face enrolled with nobody stays unknown.
    stranger = face_crop(image, boxes[4], 1.0)
    assert identify_faces(terminal, _frame(stranger, clock))[0].psn_no is None
