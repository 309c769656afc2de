"""Gallery deltas: signature and shape checks, the terminal binding, and all-or-nothing application."""

from __future__ import annotations

import base64
import copy
import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import sqlite_utils

from terminal.clock import CST
from terminal.domain import Consent, OffsiteFiling, Person
from terminal.errors import GalleryDeltaError
from terminal.settlement.signing import generate_signing_key, sign_bundle
from terminal.store.db import open_db
from terminal.store.gallery import SqliteGallery, gallery_version, last_gallery_sync
from terminal.store.keys import TemplateCipher
from terminal.uplink.client import HttpUplink
from terminal.uplink.gallery import (
    apply_gallery_delta,
    fetch_gallery_delta,
    template_from_wire,
    template_to_wire,
    verify_delta,
)
from terminal.uplink.signing import uplink_keys
from tests.fakes import FixedClock
from tests.unit.uplink.sealed_peer import SealedPeer

AT = datetime(2025, 6, 3, 9, 30, tzinfo=CST)
PEM, TRUSTED_KEY = generate_signing_key()
TRUSTED = {TRUSTED_KEY.key_id: base64.b64decode(TRUSTED_KEY.public_key)}
IDENTITY = {"opter": "KIOSK-0001", "fixmedins_code": "H43030200001", "mdtrtarea_admvs": "430302"}


MODEL = "sface@0ba9fbfa01b5"


def _template(seed: int) -> str:
    return template_to_wire(np.random.default_rng(seed).normal(size=128).astype(np.float32))


def _tagged(seed: int, model_id: str = MODEL) -> dict[str, str]:
    return {"model_id": model_id, "vector": _template(seed)}


def _upsert(psn_no: str, certno: str, seed: int) -> dict[str, Any]:
    return {
        "psn_no": psn_no,
        "person": {
            "psn_no": psn_no,
            "psn_name": "测试",
            "certno": certno,
            "insutype": "390",
            "psn_type": "active",
            "insuplc_admdvs": "430302",
            "acct_balc": "0.00",
            "gend": "1",
            "brdy": "1970-01-01",
        },
        "benefits": {"opsp_filings": [], "assistance_category": None},
        "consent": {
            "granted_at": "2025-05-20T10:00:00+08:00",
            "purpose": "刷脸就医",
            "operator": "desk",
            "text": "同意",
        },
        "templates": [_tagged(seed)],
    }


def _body(since: int = 0, version: int = 2, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "gallery_delta",
        "fixmedins_code": "H43030200001",
        "opter": "KIOSK-0001",
        "since": since,
        "version": version,
        "issued_at": "2025-06-03T09:00:00+08:00",
        "template_format": "model-tagged/f32le",
        "upserts": [_upsert("P1", "430302197001010018", 1), _upsert("P2", "430302197001010026", 2)],
        "removals": [],
    }
    body.update(changes)
    return body


def _signed(body: dict[str, Any]) -> dict[str, Any]:
    # Through JSON, as the terminal receives it.
    return dict(json.loads(json.dumps(sign_bundle(body, PEM))))


def test_a_signed_well_formed_delta_verifies() -> None:
    delta = verify_delta(_signed(_body()), TRUSTED)
    assert [u.psn_no for u in delta.upserts] == ["P1", "P2"]
    assert delta.upserts[0].person.to_domain().brdy is not None


def test_template_wire_form_round_trips_exactly() -> None:
    vector = np.random.default_rng(7).normal(size=128).astype(np.float32)
    assert np.array_equal(template_from_wire(template_to_wire(vector)), vector)


def test_a_delta_altered_after_signing_is_refused() -> None:
    document = _signed(_body())
    document["bundle"]["upserts"][0]["benefits"]["assistance_category"] = "tekun"
    with pytest.raises(GalleryDeltaError, match="altered"):
        verify_delta(document, TRUSTED)


@pytest.mark.parametrize(
    "document",
    [
        {"bundle": _body(), "signature": None},
        {"bundle": _body()},
        ["not", "a", "document"],
    ],
    ids=["null-signature", "no-signature", "not-an-object"],
)
def test_an_unsigned_delta_is_refused(document: Any) -> None:
    with pytest.raises(GalleryDeltaError):
        verify_delta(document, TRUSTED)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"since": "0"}, "since"),
        ({"kind": "policy_bundle"}, "kind"),
        ({"version": 0, "since": 1}, "older than since"),
        ({"template_format": "arcface/512/f32le"}, "template_format"),
        ({"upserts": [_upsert("P1", "1", 1), _upsert("P1", "2", 2)]}, "more than once"),
        ({"removals": [{"psn_no": "P9", "reason": "bored"}]}, "reason"),
        ({"extra": 1}, "extra"),
    ],
    ids=[
        "string-version",
        "wrong-kind",
        "backwards",
        "other-embedder",
        "duplicate",
        "bad-reason",
        "extra-key",
    ],
)
def test_a_correctly_signed_but_malformed_delta_is_refused(change: dict[str, Any], where: str) -> None:
    with pytest.raises(GalleryDeltaError, match="malformed") as info:
        verify_delta(_signed(_body(**change)), TRUSTED)
    assert where in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("templates", [{"model_id": MODEL, "vector": "AAAA"}]),
        ("templates", []),
        ("templates", [{"model_id": MODEL, "vector": template_to_wire(np.full(128, np.nan, np.float32))}]),
        ("templates", [_template(1)]),
        ("templates", [{"model_id": "", "vector": _template(1)}]),
        ("templates", [{"model_id": "sface 0ba9", "vector": _template(1)}]),
        ("templates", [{"vector": _template(1)}]),
        ("psn_no", "P9"),
    ],
    ids=[
        "short-template",
        "no-template",
        "nan-template",
        "untagged-template",
        "empty-model-id",
        "bad-model-id",
        "no-model-id",
        "psn-mismatch",
    ],
)
def test_an_upsert_with_unusable_templates_or_identity_is_refused(field: str, value: Any) -> None:
    upsert = _upsert("P1", "430302197001010018", 1)
    upsert[field] = value
    with pytest.raises(GalleryDeltaError, match="malformed"):
        verify_delta(_signed(_body(upserts=[upsert])), TRUSTED)


def test_a_float_amount_is_refused() -> None:
    upsert = _upsert("P1", "430302197001010018", 1)
    upsert["person"]["acct_balc"] = 12.5
    with pytest.raises(GalleryDeltaError, match="acct_balc"):
        verify_delta(_signed(_body(upserts=[upsert])), TRUSTED)


def _link(tmp_path: Path, document: dict[str, Any]) -> HttpUplink:
    peer = SealedPeer(lambda envelope: {"document": document})
    link = HttpUplink(
        "http://upstream.test", uplink_keys(tmp_path), IDENTITY, transport=httpx.MockTransport(peer)
    )
    link.sign_in("S" * 30, AT)  # the delta is asked under the sign-in's data key
    return link


@pytest.mark.parametrize(
    ("change", "message"),
    [({"opter": "KIOSK-0002"}, "not this terminal"), ({"since": 1}, "asked from 0")],
    ids=["another-terminal", "another-version"],
)
def test_a_genuine_delta_for_another_terminal_or_version_is_refused(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    link = _link(tmp_path, _signed(_body(**change)))
    try:
        with pytest.raises(GalleryDeltaError, match=message):
            fetch_gallery_delta(link, lambda _at: "M1", AT, 0, TRUSTED)
    finally:
        link.close()


def _store(tmp_path: Path) -> tuple[sqlite_utils.Database, SqliteGallery]:
    db = open_db(tmp_path / "data")
    return db, SqliteGallery(db, TemplateCipher(b"k" * 32), FixedClock(AT))


def test_a_delta_that_conflicts_with_local_data_applies_nothing(tmp_path: Path) -> None:
    db, gallery = _store(tmp_path)
    try:
        # A local person already holds P2's ID number: the second upsert fails, so the first must not stay.
        local = Person("L1", "本地", "430302197001010026", "390", "active", "430302")
        gallery.enroll(
            local, Consent("L1", AT, "刷脸就医", "tech", "同意"), [np.zeros(128, np.float32)], MODEL
        )
        delta = verify_delta(_signed(_body()), TRUSTED)
        with pytest.raises(GalleryDeltaError, match="nothing was"):
            apply_gallery_delta(gallery, delta, AT)
        assert gallery_version(db) == 0 and last_gallery_sync(db) is None
        assert [r["psn_no"] for r in db.query("SELECT psn_no FROM persons")] == ["L1"]
        assert gallery.size() == 1
    finally:
        db.close()


def test_a_delta_not_following_the_held_version_applies_nothing(tmp_path: Path) -> None:
    db, gallery = _store(tmp_path)
    try:
        apply_gallery_delta(gallery, verify_delta(_signed(_body(since=0, version=2)), TRUSTED), AT)
        stale = verify_delta(_signed(_body(since=0, version=3, upserts=[_upsert("P3", "3", 3)])), TRUSTED)
        with pytest.raises(GalleryDeltaError, match="holds 2"):
            apply_gallery_delta(gallery, stale, AT)
        assert gallery_version(db) == 2
        assert not list(db.query("SELECT 1 FROM persons WHERE psn_no = 'P3'"))
    finally:
        db.close()


def test_reapplying_a_person_replaces_templates_and_keeps_one_consent_row(tmp_path: Path) -> None:
    db, gallery = _store(tmp_path)
    try:
        apply_gallery_delta(gallery, verify_delta(_signed(_body(since=0, version=2)), TRUSTED), AT)
        again = copy.deepcopy(_body(since=2, version=3, upserts=[_upsert("P1", "430302197001010018", 9)]))
        apply_gallery_delta(gallery, verify_delta(_signed(again), TRUSTED), AT)
        (template,) = gallery.templates_of("P1", MODEL)
        assert np.array_equal(template, template_from_wire(_template(9)))
        assert len(list(db.query("SELECT 1 FROM consents WHERE psn_no = 'P1'"))) == 1
    finally:
        db.close()


def test_supplementary_plan_and_family_balance_travel_and_are_stored(tmp_path: Path) -> None:
    body = _body()
    body["upserts"][0]["benefits"].update({"enterprise_supplementary": True, "mulaid_balc": "350.00"})
    db, gallery = _store(tmp_path)
    try:
        apply_gallery_delta(gallery, verify_delta(_signed(body), TRUSTED), AT)
        stored = gallery.benefits_of(body["upserts"][0]["psn_no"])
        other = gallery.benefits_of(body["upserts"][1]["psn_no"])
    finally:
        db.close()
    assert stored.enterprise_supplementary is True and stored.mulaid_balc == Decimal("350.00")
    assert other.enterprise_supplementary is False and other.mulaid_balc == Decimal("0.00")


def test_an_offsite_filing_travels_and_is_stored(tmp_path: Path) -> None:
    body = _body()
    filing = {"mdtrtarea_admdvs": "430000", "kind": "filed", "begndate": "2025-01-01", "enddate": None}
    body["upserts"][0]["benefits"]["offsite_filings"] = [filing]
    db, gallery = _store(tmp_path)
    try:
        apply_gallery_delta(gallery, verify_delta(_signed(body), TRUSTED), AT)
        stored = gallery.benefits_of(body["upserts"][0]["psn_no"])
        other = gallery.benefits_of(body["upserts"][1]["psn_no"])
    finally:
        db.close()
    assert stored.offsite_filings == (OffsiteFiling("430000", "filed", date(2025, 1, 1), None),)
    assert other.offsite_filings == ()


@pytest.mark.parametrize("change", [{"kind": "forever"}, {"mdtrtarea_admdvs": "43"}])
def test_a_malformed_offsite_filing_is_refused(change: dict[str, Any]) -> None:
    body = _body()
    filing = {"mdtrtarea_admdvs": "430000", "kind": "filed", "begndate": "2025-01-01", **change}
    body["upserts"][0]["benefits"]["offsite_filings"] = [filing]
    with pytest.raises(GalleryDeltaError):
        verify_delta(_signed(body), TRUSTED)


def test_a_family_balance_sent_as_a_number_is_refused() -> None:
    body = _body()
    body["upserts"][0]["benefits"]["mulaid_balc"] = 350.5
    with pytest.raises(GalleryDeltaError):
        verify_delta(_signed(body), TRUSTED)


def test_a_delta_with_changes_that_does_not_advance_the_version_is_refused() -> None:
    # Issue 17: a delta from version 1 to 1 applied twice. Only an empty delta may stay at its version.
    with pytest.raises(GalleryDeltaError, match="must advance the version"):
        verify_delta(_signed(_body(since=1, version=1)), TRUSTED)
    assert verify_delta(_signed(_body(since=1, version=1, upserts=[])), TRUSTED).version == 1


class _Link:
    """The one call fetch_gallery_delta makes, answering a fixed signed document."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.identity = {"fixmedins_code": "H43030200001", "opter": "KIOSK-0001"}
        self._document = document

    def gallery_delta(self, msgid: str, since: int, at: datetime) -> dict[str, Any]:
        return {"document": self._document}


def test_a_delta_issued_long_ago_or_ahead_is_refused_as_stale() -> None:
    now = datetime(2025, 6, 3, 9, 30, tzinfo=CST)
    old = _Link(_signed(_body(issued_at="2001-06-03T09:00:00+08:00")))
    with pytest.raises(GalleryDeltaError, match="stale or replayed"):
        fetch_gallery_delta(old, lambda _at: "m", now, 0, TRUSTED, max_age_s=3600)  # type: ignore[arg-type]
    ahead = _Link(_signed(_body(issued_at="2025-06-03T12:00:00+08:00")))
    with pytest.raises(GalleryDeltaError, match="stale or replayed"):
        fetch_gallery_delta(ahead, lambda _at: "m", now, 0, TRUSTED, max_age_s=3600)  # type: ignore[arg-type]
    fresh = _Link(_signed(_body()))  # issued 09:00, half an hour before
    assert fetch_gallery_delta(fresh, lambda _at: "m", now, 0, TRUSTED, max_age_s=3600).version == 2  # type: ignore[arg-type]
