"""The checkout session with fakes at its ports (face, gallery, ledger) and the real pure rule engine."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlite_utils

from terminal.bill_json import load_bill
from terminal.config import DEFAULT_CONFIG, load
from terminal.demo_data import DEMO_PEOPLE, SAMPLE_BILL
from terminal.domain import (
    CertType,
    Consent,
    FaceBox,
    FaceObservation,
    Frame,
    IdentityClaim,
    Match,
    NoMatch,
    Person,
    SettlementRecord,
)
from terminal.errors import (
    AttemptsExhaustedError,
    DuplicateSettlementError,
    FaceMaskedError,
    IdentityError,
    NoFaceError,
    SettlementError,
    UnknownPersonError,
)
from terminal.pipeline.checkout import Checkout, Priced
from terminal.pipeline.identify import claim_from_input
from terminal.pipeline.liveness import AttemptRecord, LivenessOutcome
from terminal.pipeline.session import Session, SessionStateError
from terminal.pipeline.session_state import State
from terminal.settlement import PersonBenefits
from terminal.store.db import open_db
from terminal.store.policy_files import load_catalog, load_shelf, load_trusted_keys
from terminal.store.sessions import SessionJournal
from terminal.vision.liveness.sources import SensorFrame
from tests.fakes import FixedClock

PERSON = DEMO_PEOPLE[2]
BOX = FaceBox(10, 10, 110, 110, 0.99, ((40, 50), (80, 50), (60, 70), (45, 90), (75, 90)))


class FakeFaces:
    """Frames whose source names who is in them: 'none', 'masked', 'stranger' or a psn_no."""

    def __init__(self) -> None:
        self.embedded = 0

    def observe_primary(self, frame: Frame) -> FaceObservation:
        """A face tagged with the frame's source."""
        if frame.source == "none":
            raise NoFaceError("no usable face found")
        if frame.source == "masked":
            raise FaceMaskedError("lower face covered")
        self.embedded += 1
        return FaceObservation(box=BOX, template=np.zeros(128, dtype=np.float32) + len(frame.source))


class FakeLiveness:
    """One liveness attempt: 'photo' frames fail it, 'none' frames keep asking, any other frame passes."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.records: list[AttemptRecord] = []

    def feed(self, sensors: SensorFrame) -> LivenessOutcome:
        """Judge the capture by its source."""
        source = sensors.rgb.source
        if source == "none":
            return LivenessOutcome("continue", "face the screen", "no_face")
        if source == "photo":
            self.records.append(AttemptRecord(1, False, "parallax: planar", {"parallax": 0.01}, {}))
            return LivenessOutcome("retry", "try again")
        self.frames.append(sensors.rgb)
        return LivenessOutcome("pass", "verified")

    def identity_frames(self) -> tuple[Frame, ...]:
        """The passing frame, three times (start, middle and end of a one-frame attempt)."""
        if not self.frames:
            raise IdentityError("liveness has not passed")
        return (self.frames[0], self.frames[-1], self.frames[-1])

    def diagnostics(self) -> tuple[AttemptRecord, ...]:
        """The failed attempts."""
        return tuple(self.records)


class FakeIdentifier:
    """Matches a face whose frame source was the enrolled psn_no; credentials by a fixed table."""

    def __init__(self) -> None:
        self.calls = 0

    def verify(self, observation: FaceObservation, psn_no: str) -> Match | NoMatch:
        """1:1."""
        return self.identify(observation)

    def identify(self, observation: FaceObservation) -> Match | NoMatch:
        """1:N."""
        self.calls += 1
        if float(observation.template[0]) == len(PERSON.psn_no):
            return Match(PERSON.psn_no, "face-1:N", 0.3)
        return NoMatch("face-1:N", 0.9)

    def combine(self, observations: Sequence[FaceObservation]) -> FaceObservation | None:
        """The first face when every frame shows the same one (same fake template), else None."""
        first = observations[0]
        if any(not np.array_equal(o.template, first.template) for o in observations):
            return None
        return first

    def by_credential(self, claim: IdentityClaim) -> Match:
        """Credential lookup."""
        if claim.mdtrt_cert_no in (PERSON.certno, "QR-TOKEN"):
            return Match(PERSON.psn_no, "credential")
        raise UnknownPersonError("unknown credential")


class FakeGallery:
    """The one demo person."""

    def enroll(self, person: Person, consent: Consent, templates: Sequence[Any], model_id: str) -> None:
        """Unused."""

    def templates_of(self, psn_no: str, model_id: str) -> list[Any]:
        """Unused."""
        return []

    def all_templates(self, model_id: str) -> tuple[list[str], Any]:
        """Unused."""
        return [], np.zeros((0, 128), dtype=np.float32)

    def person(self, psn_no: str) -> Person:
        """The demo person."""
        if psn_no != PERSON.psn_no:
            raise UnknownPersonError(psn_no)
        return PERSON

    def person_by_claim(self, claim: IdentityClaim) -> Person:
        """Unused."""
        return PERSON

    def benefits_of(self, psn_no: str) -> PersonBenefits:
        """The defaults: insured, no filings, no assistance."""
        return PersonBenefits()


class FakeLedger:
    """Settlements in a dict; a second settlement of the same bill is refused, like the real ledger."""

    def __init__(self) -> None:
        self.records: dict[str, SettlementRecord] = {}
        self.seq = 0

    def allocate_msgid(self, at: datetime) -> str:
        """A msgid."""
        self.seq += 1
        return f"H43030200001{at:%Y%m%d%H%M%S}{self.seq:04d}"

    def accumulators(self, psn_no: str, year: int) -> Mapping[str, Any]:
        """None stored."""
        return {}

    def is_settled(self, chrg_bchno: str) -> bool:
        """Whether recorded."""
        return chrg_bchno in self.records

    def settlement_of(self, chrg_bchno: str) -> Mapping[str, Any] | None:
        """The recorded settlement as the ledger's row."""
        record = self.records.get(chrg_bchno)
        if record is None:
            return None
        return {
            "msgid": record.msgid,
            "psn_no": record.psn_no,
            "identified_by": record.identified_by,
            "setl_time": record.setl_time.isoformat(),
            "medfee_sumamt": str(record.medfee_sumamt),
            "fund_pay_sumamt": str(record.fund_pay_sumamt),
            "psn_part_amt": str(record.psn_part_amt),
        }

    def record(self, record: SettlementRecord) -> None:
        """Record once."""
        if record.chrg_bchno in self.records:
            raise DuplicateSettlementError(record.chrg_bchno)
        self.records[record.chrg_bchno] = record


class Crash(BaseException):
    """Stands in for the process dying (power cut) at a chosen line."""


class CrashingCheckout:
    """A real Checkout that can die just before or just after the ledger write."""

    def __init__(self, inner: Checkout) -> None:
        self.inner = inner
        self.crash: str | None = None

    def price(self, bill: Any, psn_no: str) -> Priced:
        """Delegate."""
        return self.inner.price(bill, psn_no)

    def settle(self, priced: Priced, match: Match) -> SettlementRecord:
        """Delegate, dying (or refusing) where told."""
        if self.crash == "before":
            raise Crash
        if self.crash == "refuse":
            self.crash = None
            raise SettlementError("year-to-date totals changed since pricing; price the bill again")
        record = self.inner.settle(priced, match)
        if self.crash == "after":
            raise Crash
        if self.crash == "error_after":
            self.crash = None
            raise SettlementError("the uplink hook failed after the ledger committed")
        if self.crash == "offline":
            return replace(record, offline=True)  # as settled inside the offline limits
        return record


class Rig:
    """Everything a session needs, rebuildable over the same journal and ledger (a restart)."""

    def __init__(self, folder: Path) -> None:
        cfg = load(DEFAULT_CONFIG)
        self.clock = FixedClock()
        self.ledger = FakeLedger()
        self.identifier = FakeIdentifier()
        self.faces = FakeFaces()
        self.folder = folder
        self.db: sqlite_utils.Database = open_db(folder)
        self.checkout = CrashingCheckout(
            Checkout(
                gallery=FakeGallery(),
                ledger=self.ledger,
                policies=load_shelf(cfg.settlement.policies, load_trusted_keys(cfg.settlement.trusted_keys)),
                catalog=load_catalog(cfg.settlement.catalog),
                terminal=cfg.terminal,
                clock=self.clock,
            )
        )

    def session(self, **kwargs: Any) -> Session:
        """A session, as after a (re)start."""
        kwargs.setdefault("liveness", FakeLiveness)
        return Session(
            faces=self.faces,
            identifier=self.identifier,
            checkout=self.checkout,
            ledger=self.ledger,
            journal=SessionJournal(self.db),
            clock=self.clock,
            max_face_attempts=3,
            timeout=timedelta(seconds=120),
            **kwargs,
        )

    def restart(self) -> None:
        """Close and reopen the database file, as a new process would."""
        self.db.close()
        self.db = open_db(self.folder)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    """A fresh rig over a temp SQLite file."""
    r = Rig(tmp_path / "data")
    yield r
    r.db.close()


def frame(source: str) -> Frame:
    """A frame whose source tells the fakes who is in it."""
    return Frame(np.zeros((4, 4, 3), dtype=np.uint8), source, datetime(2025, 6, 3, 9, 30))


def face(session: Session, source: str) -> dict[str, Any]:
    """One camera capture of `source` on the session's face path."""
    return session.face_frame(SensorFrame(frame(source)))


def test_face_checkout_goes_through_every_state_to_a_receipt(rig: Rig) -> None:
    session = rig.session()
    assert session.state is State.IDLE
    assert session.start()["state"] == "identifying"
    view = face(session, PERSON.psn_no)
    assert (view["state"], view["result"], view["prompt"]) == ("identified", "pass", "choose_bill")
    view = session.load_bill(load_bill(SAMPLE_BILL))
    assert view["state"] == "priced"
    assert view["bill"]["totals"]["psn_part_amt"] == "417.76"
    assert {line["cls"] for line in view["bill"]["lines"]} == {"甲", "乙", "丙"}
    view = session.confirm()
    assert view["state"] == "settled" and view["receipt"]["psn_part_amt"] == "417.76"
    assert view["receipt"]["offline"] is False
    assert list(rig.ledger.records) == ["DEMO-OP-0001"]
    assert session.finish()["state"] == "idle"
    events = [e["event"] for e in SessionJournal(rig.db).events(view["session_id"])]
    assert events == ["start", "identified", "priced", "confirm", "settled", "done"]


def test_patient_view_never_carries_a_score(rig: Rig) -> None:
    session = rig.session()
    session.start()
    text = json.dumps(face(session, "stranger")) + json.dumps(face(session, PERSON.psn_no))
    assert "distance" not in text and "0.9" not in text and "score" not in text
    assert session.diagnostics()["recent_attempts"][1]["distance"] == 0.9, "the technician sees it"


def test_face_path_ends_after_three_failures_and_credentials_stay_offered(rig: Rig) -> None:
    session = rig.session()
    session.start()
    for left in (2, 1, 0):
        view = face(session, "stranger")
        assert view["result"] == "fail" and view["face_attempts_left"] == left
        assert {"qr", "card", "id"} <= set(view["methods"])
    assert view["prompt"] == "face_exhausted" and not view["face_available"]
    assert "face" not in view["methods"]
    calls = rig.identifier.calls
    with pytest.raises(AttemptsExhaustedError):
        face(session, PERSON.psn_no)
    assert rig.identifier.calls == calls, "an exhausted face path compares nothing"
    view = session.identify_credential(claim_from_input("id", PERSON.certno))
    assert view["state"] == "identified"


def test_no_face_in_the_frame_is_a_retry_not_a_failed_attempt(rig: Rig) -> None:
    session = rig.session()
    session.start()
    view = face(session, "none")
    assert (view["prompt"], view["challenge"], view["face_attempts_left"]) == ("face_check", "no_face", 3)
    assert view["face_checking"] and view["state"] == "identifying"


def test_failed_liveness_counts_as_a_failed_face_attempt(rig: Rig) -> None:
    session = rig.session()
    session.start()
    calls = rig.identifier.calls
    view = face(session, "photo")
    assert view["result"] == "fail" and view["face_attempts_left"] == 2
    assert rig.identifier.calls == calls, "a failed liveness attempt compares nobody"
    attempt = session.diagnostics()["recent_attempts"][0]
    assert attempt["liveness"] == "fail" and attempt["scores"] == {"parallax": 0.01}
    assert "parallax" not in json.dumps(view), "the patient sees pass/fail only"


def test_without_a_liveness_check_face_is_not_offered(rig: Rig) -> None:
    session = rig.session(liveness=None)
    view = session.start()
    assert "face" not in view["methods"] and not view["face_available"]
    assert {"qr", "card", "id"} <= set(view["methods"])
    with pytest.raises(IdentityError):
        face(session, PERSON.psn_no)
    assert session.diagnostics()["liveness"].startswith("not configured: face is not offered")


def test_identity_frames_must_name_the_same_person(rig: Rig) -> None:
    class Swapped(FakeLiveness):
        def identity_frames(self) -> tuple[Frame, ...]:
            return (frame(PERSON.psn_no), frame(PERSON.psn_no), frame("stranger"))

    session = rig.session(liveness=Swapped)
    view = face(session, PERSON.psn_no)
    assert (view["state"], view["result"], view["face_attempts_left"]) == ("identifying", "fail", 2)


def test_the_challenge_frames_are_never_embedded_and_the_decision_embeds_three(rig: Rig) -> None:
    session = rig.session()
    session.start()
    for _ in range(5):
        assert face(session, "none")["face_checking"]
    assert rig.faces.embedded == 0, "the per-frame challenge path must not run the embedder"
    assert face(session, PERSON.psn_no)["state"] == "identified"
    assert rig.faces.embedded == 3 and rig.identifier.calls == 1, "one decision on three frames"


def test_fewer_usable_frames_than_the_decision_needs_fail_with_a_reason(rig: Rig) -> None:
    class Gapped(FakeLiveness):
        def identity_frames(self) -> tuple[Frame, ...]:
            return (frame(PERSON.psn_no), frame("none"), frame(PERSON.psn_no))

    session = rig.session(liveness=Gapped)
    view = face(session, PERSON.psn_no)
    assert (view["state"], view["result"], view["prompt"]) == ("identifying", "fail", "face_retry")
    attempt = session.diagnostics()["recent_attempts"][0]
    assert attempt["reason"] == "only 2 of 3 frames had a usable face" and attempt["liveness"] == "pass"
    assert rig.identifier.calls == 0, "no decision rests on fewer frames than configured"


def test_a_masked_face_is_asked_to_lower_the_mask(rig: Rig) -> None:
    class Masked(FakeLiveness):
        def identity_frames(self) -> tuple[Frame, ...]:
            return (frame("masked"),) * 5

    session = rig.session(liveness=Masked)
    view = face(session, PERSON.psn_no)
    assert (view["state"], view["result"], view["prompt"]) == ("identifying", "fail", "lower_mask")
    assert "mask" in session.diagnostics()["recent_attempts"][0]["reason"]


def test_a_configured_single_frame_decision_needs_one_usable_frame(rig: Rig) -> None:
    class Gapped(FakeLiveness):
        def identity_frames(self) -> tuple[Frame, ...]:
            return (frame("none"), frame(PERSON.psn_no), frame("none"))

    session = rig.session(liveness=Gapped, decision_frames=1)
    assert face(session, PERSON.psn_no)["state"] == "identified"


def test_a_refused_settle_returns_to_the_estimate_instead_of_sticking(rig: Rig) -> None:
    session = rig.session()
    face(session, PERSON.psn_no)
    session.load_bill(load_bill(SAMPLE_BILL))
    rig.checkout.crash = "refuse"
    with pytest.raises(SettlementError):
        session.confirm()
    view = session.view()
    assert (view["state"], view["prompt"]) == ("priced", "confirm_again")
    assert rig.ledger.records == {}
    assert session.confirm()["state"] == "settled" and len(rig.ledger.records) == 1


def test_unknown_credential_fails_and_keeps_identifying(rig: Rig) -> None:
    session = rig.session()
    session.start()
    view = session.identify_credential(IdentityClaim(CertType.EC_TOKEN, "NOT-LINKED"))
    assert (view["state"], view["result"], view["prompt"]) == ("identifying", "fail", "credential_unknown")


def test_bill_loaded_before_identification_is_priced_on_identification(rig: Rig) -> None:
    session = rig.session()
    session.start()
    assert session.load_bill(load_bill(SAMPLE_BILL))["state"] == "identifying"
    view = session.identify_credential(IdentityClaim(CertType.EC_TOKEN, "QR-TOKEN"))
    assert view["state"] == "priced"


@pytest.mark.parametrize("steps", [0, 1, 2])
def test_cancel_from_every_state_returns_to_idle_without_charging(rig: Rig, steps: int) -> None:
    session = rig.session()
    session.start()
    if steps >= 1:
        face(session, PERSON.psn_no)
    if steps >= 2:
        session.load_bill(load_bill(SAMPLE_BILL))
    view = session.cancel()
    assert (view["state"], view["outcome"]) == ("idle", "cancelled")
    assert rig.ledger.records == {}


@pytest.mark.parametrize("steps", [0, 1, 2])
def test_timeout_from_every_state_on_the_injected_clock(rig: Rig, steps: int) -> None:
    session = rig.session()
    session.start()
    if steps >= 1:
        face(session, PERSON.psn_no)
    if steps >= 2:
        session.load_bill(load_bill(SAMPLE_BILL))
    rig.clock.at += timedelta(seconds=119)
    assert not session.tick()
    rig.clock.at += timedelta(seconds=2)
    assert session.tick()
    assert (session.view()["state"], session.view()["outcome"]) == ("idle", "timeout")
    assert rig.ledger.records == {}


def test_receipt_screen_times_out_back_to_idle(rig: Rig) -> None:
    session = rig.session()
    face(session, PERSON.psn_no)
    session.load_bill(load_bill(SAMPLE_BILL))
    session.confirm()
    rig.clock.at += timedelta(minutes=5)
    assert session.tick() and session.state is State.IDLE


def test_confirm_before_pricing_is_refused(rig: Rig) -> None:
    session = rig.session()
    session.start()
    with pytest.raises(SessionStateError):
        session.confirm()


def test_one_session_per_terminal(rig: Rig) -> None:
    session = rig.session()
    face(session, PERSON.psn_no)
    with pytest.raises(SessionStateError):
        session.start()


def test_restart_resumes_a_priced_session(rig: Rig) -> None:
    first = rig.session()
    face(first, PERSON.psn_no)
    sid = first.load_bill(load_bill(SAMPLE_BILL))["session_id"]
    rig.restart()
    second = rig.session()
    view = second.view()
    assert (view["session_id"], view["state"]) == (sid, "priced")
    assert second.confirm()["state"] == "settled"


def test_crash_after_the_ledger_write_is_never_charged_twice(rig: Rig) -> None:
    first = rig.session()
    face(first, PERSON.psn_no)
    first.load_bill(load_bill(SAMPLE_BILL))
    rig.checkout.crash = "after"
    with pytest.raises(Crash):
        first.confirm()
    rig.checkout.crash = None
    rig.restart()
    second = rig.session()
    view = second.view()
    assert view["state"] == "settled" and view["receipt"]["recovered"] is True
    assert len(rig.ledger.records) == 1
    with pytest.raises(SessionStateError):
        second.confirm()
    assert len(rig.ledger.records) == 1


def test_crash_before_the_ledger_write_asks_the_patient_again(rig: Rig) -> None:
    first = rig.session()
    face(first, PERSON.psn_no)
    first.load_bill(load_bill(SAMPLE_BILL))
    rig.checkout.crash = "before"
    with pytest.raises(Crash):
        first.confirm()
    rig.checkout.crash = None
    rig.restart()
    second = rig.session()
    assert (second.state, second.view()["prompt"]) == (State.PRICED, "confirm_again")
    second.confirm()
    assert len(rig.ledger.records) == 1


def test_a_bill_settled_elsewhere_is_not_charged_again_on_confirm(rig: Rig) -> None:
    session = rig.session()
    face(session, PERSON.psn_no)
    bill = load_bill(SAMPLE_BILL)
    session.load_bill(bill)
    other = rig.checkout.inner
    other.settle(other.price(replace(bill), PERSON.psn_no), Match(PERSON.psn_no, "credential"))
    view = session.confirm()
    assert view["state"] == "settled" and len(rig.ledger.records) == 1


@pytest.mark.parametrize(
    ("method", "value", "cert"),
    [("qr", "TOKEN1", CertType.EC_TOKEN), ("card", "C1", CertType.SOCIAL_SECURITY_CARD)],
)
def test_claim_from_input(method: str, value: str, cert: CertType) -> None:
    assert claim_from_input(method, f" {value} ") == IdentityClaim(cert, value)


def test_claim_from_input_checks_the_id_number_shape() -> None:
    from terminal.errors import IdentityError

    assert claim_from_input("id", "43030219851103003x").mdtrt_cert_no.endswith("X")
    with pytest.raises(IdentityError):
        claim_from_input("id", "12345")


def test_an_offline_settlement_says_so_on_the_receipt(rig: Rig) -> None:
    session = rig.session()
    face(session, PERSON.psn_no)
    session.load_bill(load_bill(SAMPLE_BILL))
    rig.checkout.crash = "offline"
    assert session.confirm()["receipt"]["offline"] is True


def test_cancelling_does_not_give_the_face_path_new_attempts(rig: Rig) -> None:
    session = rig.session()
    session.start()
    for _ in range(3):
        face(session, "photo")
    session.cancel()
    view = session.start()
    assert not view["face_available"] and view["face_attempts_left"] == 0
    assert {"qr", "card", "id"} <= set(view["methods"])
    with pytest.raises(AttemptsExhaustedError):
        face(session, PERSON.psn_no)
    rig.restart()
    assert not rig.session().start()["face_available"], "a restart does not reset the count either"
    session = rig.session()
    session.cancel()
    rig.clock.at += timedelta(minutes=11)  # past the 10-minute window
    assert session.start()["face_attempts_left"] == 3


def test_an_error_after_the_ledger_committed_shows_the_receipt_instead_of_failing(rig: Rig) -> None:
    session = rig.session()
    face(session, PERSON.psn_no)
    session.load_bill(load_bill(SAMPLE_BILL))
    rig.checkout.crash = "error_after"
    view = session.confirm()
    assert view["state"] == "settled" and view["receipt"]["recovered"] is True
    assert len(rig.ledger.records) == 1
