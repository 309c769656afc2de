"""A checkout session rig: fakes at its ports (face, gallery, ledger), the real rule engine and journals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
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
    DuplicateSettlementError,
    FaceMaskedError,
    IdentityError,
    NoFaceError,
    SecondFactorRequiredError,
    SettlementError,
    StoreBusyError,
    StoreError,
    UnknownPersonError,
)
from terminal.pipeline.attempt_limits import PauseRule, TerminalAttempts
from terminal.pipeline.checkout import Checkout, Priced
from terminal.pipeline.liveness import AttemptRecord, LivenessOutcome
from terminal.pipeline.session import Session
from terminal.settlement import PersonBenefits
from terminal.store.attempts import AttemptJournal
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
        # a gallery above the 1:N cap: 1:N asks for the ID number's last four, and searches only them
        self.large = False

    def verify(self, observation: FaceObservation, psn_no: str) -> Match | NoMatch:
        """1:1."""
        return self.identify(observation)

    def identify(self, observation: FaceObservation, last4: str | None = None) -> Match | NoMatch:
        """1:N."""
        self.calls += 1
        if self.large and last4 is None:
            raise SecondFactorRequiredError("the gallery is above the 1:N cap")
        if last4 is not None and last4 != PERSON.certno[-4:]:
            return NoMatch("face-1:N")
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

    def benefit_hints(self, psn_no: str) -> list[dict[str, Any]]:
        """Delegate."""
        return self.inner.benefit_hints(psn_no)

    def settle(self, priced: Priced, match: Match) -> SettlementRecord:
        """Delegate, dying (or refusing) where told."""
        if self.crash == "before":
            raise Crash
        if self.crash == "busy":
            # Another process held the database's write lock beyond busy_timeout: nothing recorded.
            self.crash = None
            raise StoreBusyError("database is locked (SQLITE_BUSY)")
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


class FaultyJournal(SessionJournal):
    """The real session journal over SQLite, refusing the writes a test names (a busy or full disk)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        super().__init__(db)
        self.fail: dict[str, StoreError] = {}
        self.refused: list[str] = []

    def save(self, session: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        """Refuse once the transition named in `fail` (nothing written), journal every other one."""
        error = self.fail.pop(event["event"], None)
        if error is not None:
            self.refused.append(event["event"])
            raise error
        super().save(session, event)


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
        self.journal = FaultyJournal(self.db)
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

    def session(self, rule: PauseRule | None = None, **kwargs: Any) -> Session:
        """A session, as after a (re)start."""
        kwargs.setdefault("liveness", FakeLiveness)
        self.journal = FaultyJournal(self.db)
        return Session(
            faces=self.faces,
            identifier=self.identifier,
            checkout=self.checkout,
            ledger=self.ledger,
            journal=self.journal,
            clock=self.clock,
            limits=TerminalAttempts(AttemptJournal(self.db), self.clock, rule or PauseRule()),
            max_face_attempts=3,
            timeout=timedelta(seconds=120),
            **kwargs,
        )

    def restart(self) -> None:
        """Close and reopen the database file, as a new process would."""
        self.db.close()
        self.db = open_db(self.folder)


def frame(source: str) -> Frame:
    """A frame whose source tells the fakes who is in it."""
    return Frame(np.zeros((4, 4, 3), dtype=np.uint8), source, datetime(2025, 6, 3, 9, 30))


def face(session: Session, source: str) -> dict[str, Any]:
    """One camera capture of `source` on the session's face path (tapping face first if no attempt runs)."""
    if not session.wants_frames():
        session.begin_face()
    return session.face_frame(SensorFrame(frame(source)))


def load_sample(session: Session, bill_path: Path = SAMPLE_BILL) -> dict[str, Any]:
    """Load a bill into the session the caller sees."""
    return session.load_bill(load_bill(bill_path), session.session_id)


def confirm(session: Session) -> dict[str, Any]:
    """Confirm exactly what the session's view shows."""
    view = session.view()
    return session.confirm(view["session_id"], view["bill"]["chrg_bchno"], view["amounts_digest"])


def proven(cert: CertType = CertType.EC_TOKEN, value: str = "QR-TOKEN") -> IdentityClaim:
    """A QR or card claim as the reader worker hands it over once possession is proven."""
    return IdentityClaim(cert, value, psn_no=PERSON.psn_no)
