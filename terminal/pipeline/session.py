"""Stage 5: the checkout session — one patient at one terminal, from hello to receipt.

idle → identifying (face / QR / card / ID) → identified → priced → confirmed → settled → idle,
with cancel and timeout from every state. Every transition is journalled in SQLite so a restart
resumes where the terminal was; a confirmed session is settled at most once (the ledger decides).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

import sqlite_utils

from terminal.domain import (
    Bill,
    CertType,
    FaceObservation,
    Frame,
    IdentityClaim,
    Match,
    MatchMethod,
    NoMatch,
    SettlementRecord,
)
from terminal.errors import (
    AttemptsExhaustedError,
    DuplicateSettlementError,
    FaceError,
    IdentityError,
    SettlementError,
    TerminalError,
    UnknownPersonError,
)
from terminal.errors import SessionStateError as SessionStateError
from terminal.pipeline.bills import bill_from_json
from terminal.pipeline.checkout import Priced
from terminal.pipeline.identify import FaceAttempts
from terminal.pipeline.liveness import AttemptRecord, LivenessOutcome
from terminal.ports import Clock
from terminal.settlement.catalog import LEVEL_CHARS
from terminal.settlement.result import SETTLED_AMOUNTS
from terminal.vision.liveness.sources import SensorFrame

log = logging.getLogger(__name__)


class State(StrEnum):
    """Where the one session of this terminal stands."""

    IDLE = "idle"
    IDENTIFYING = "identifying"
    IDENTIFIED = "identified"
    PRICED = "priced"
    CONFIRMED = "confirmed"
    SETTLED = "settled"


class LivenessPort(Protocol):
    """One face attempt's liveness check: captures in, status and next prompt out; scores stay inside."""

    def feed(self, sensors: SensorFrame) -> LivenessOutcome:
        """Take the next capture; `pass`, `continue`, `retry` or `exhausted` with the next prompt."""
        ...

    def identity_frames(self) -> tuple[Frame, ...]:
        """Frames of the passed attempt to identify on (IdentityError before a pass)."""
        ...

    def diagnostics(self) -> tuple[AttemptRecord, ...]:
        """Per-attempt scores and reasons, for technicians only."""
        ...


# A fresh liveness check per face attempt; None means face is not offered at all (fail closed).
LivenessFactory = Callable[[], LivenessPort]


class FacePort(Protocol):
    """Turns a frame into the face of the person at the kiosk."""

    def observe_primary(self, frame: Frame) -> FaceObservation:
        """The largest usable face; NoFaceError when there is none."""
        ...


class IdentifyPort(Protocol):
    """Decides who a face or credential is."""

    def verify(self, observation: FaceObservation, psn_no: str) -> Match | NoMatch:
        """1:1 against a claim."""
        ...

    def identify(self, observation: FaceObservation) -> Match | NoMatch:
        """1:N over the small consented gallery."""
        ...

    def by_credential(self, claim: IdentityClaim) -> Match:
        """From a QR / card / ID claim alone."""
        ...


class CheckoutPort(Protocol):
    """Prices and settles bills."""

    def price(self, bill: Bill, psn_no: str) -> Priced:
        """A pre-settlement; nothing recorded."""
        ...

    def settle(self, priced: Priced, match: Match) -> SettlementRecord:
        """Record the settlement durably."""
        ...


class SettledCheck(Protocol):
    """The part of the ledger recovery needs."""

    def is_settled(self, chrg_bchno: str) -> bool:
        """Whether this bill already has a recorded settlement."""
        ...


@dataclass(frozen=True)
class Attempt:
    """One identification attempt as the technician sees it (scores and timings: never for patients)."""

    at: str
    session_id: str
    method: str
    passed: bool
    distance: float | None
    liveness: str
    reason: str
    detect_ms: float
    match_ms: float
    scores: Mapping[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """JSON for the technician page."""
        return {
            "at": self.at,
            "session_id": self.session_id,
            "method": self.method,
            "passed": self.passed,
            "distance": None if self.distance is None else round(self.distance, 4),
            "liveness": self.liveness,
            "reason": self.reason,
            "detect_ms": round(self.detect_ms, 1),
            "match_ms": round(self.match_ms, 1),
            "scores": {name: round(value, 3) for name, value in self.scores.items()},
        }


@dataclass
class _Live:
    """The mutable state of the current session; only the Session touches it, under its lock."""

    session_id: str
    state: State
    started_at: datetime
    updated_at: datetime
    face_failures: int = 0
    psn_no: str | None = None
    method: MatchMethod | None = None
    bill: Mapping[str, Any] | None = None
    msgid: str | None = None
    last_result: str | None = None
    prompt: str = "welcome"
    priced: Priced | None = None
    record: Mapping[str, Any] | None = None
    attempts: FaceAttempts = field(default_factory=lambda: FaceAttempts(3))
    liveness: LivenessPort | None = None
    challenge: str | None = None


def _mask_name(name: str) -> str:
    """Show a name on a public screen as 李*国 / 张*: enough to recognise oneself, not to read aloud."""
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def _bill_json(bill: Bill) -> dict[str, Any]:
    """A Bill back to the national JSON shape, for the journal."""
    return {
        "chrg_bchno": bill.chrg_bchno,
        "med_type": bill.med_type,
        "begntime": bill.begntime.isoformat(),
        "acct_used_flag": bill.acct_used_flag,
        "feedetail": [
            {
                "feedetl_sn": line.feedetl_sn,
                "med_list_codg": line.med_list_codg,
                "name": line.name,
                "cnt": str(line.cnt),
                "pric": str(line.pric),
                "det_item_fee_sumamt": str(line.det_item_fee_sumamt),
                **({"dise_codg": line.dise_codg} if line.dise_codg else {}),
            }
            for line in bill.lines
        ],
    }


def priced_view(priced: Priced) -> dict[str, Any]:
    """The pre-settlement as the patient sees it: each line's class and share, each layer's amount."""
    info = priced.result.setlinfo
    lines = []
    for line in priced.result.lines:
        own = line.fulamt_ownpay_amt + line.overlmt_amt + line.preselfpay_amt
        lines.append(
            {
                "name": line.name,
                "code": line.med_list_codg,
                "cls": LEVEL_CHARS.get(line.chrgitm_lv, "?"),
                "cnt": str(line.cnt),
                "fee": str(line.det_item_fee_sumamt),
                "own": str(own),
                "in_scope": str(line.inscp_scp_amt),
                "special": bool(line.dise_codg),
            }
        )
    layers = {name: str(getattr(info, name)) for name in SETTLED_AMOUNTS}
    special = priced.bill.med_type == "14" or any(line.dise_codg for line in priced.bill.lines)
    return {
        "chrg_bchno": priced.bill.chrg_bchno,
        "med_type": priced.bill.med_type,
        "special_disease": special,
        "lines": lines,
        "totals": layers,
    }


class SessionJournal:
    """The session and its transitions in SQLite, so a restart resumes the session it interrupted."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def save(self, live: _Live, event: str, from_state: State | None, detail: str, at: datetime) -> None:
        """Upsert the session row and append the transition, in one transaction."""
        with self._db.atomic():
            self._db.execute(
                "INSERT INTO checkout_sessions (session_id, state, started_at, updated_at, face_failures,"
                " psn_no, method, bill, msgid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(session_id) DO UPDATE SET state = excluded.state,"
                " updated_at = excluded.updated_at, face_failures = excluded.face_failures,"
                " psn_no = excluded.psn_no, method = excluded.method, bill = excluded.bill,"
                " msgid = excluded.msgid",
                [
                    live.session_id,
                    live.state.value,
                    live.started_at.isoformat(),
                    live.updated_at.isoformat(),
                    live.face_failures,
                    live.psn_no,
                    live.method,
                    json.dumps(live.bill, ensure_ascii=False) if live.bill is not None else None,
                    live.msgid,
                ],
            )
            self._db.execute(
                "INSERT INTO checkout_session_events (session_id, at, event, from_state, to_state, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    live.session_id,
                    at.isoformat(),
                    event,
                    from_state.value if from_state else None,
                    live.state.value,
                    detail,
                ],
            )

    def face_failures_since(self, since: datetime) -> int:
        """Failed face attempts on this terminal since a moment, whatever session they belonged to."""
        rows = list(
            self._db.query(
                "SELECT COUNT(*) AS n FROM checkout_session_events WHERE event = 'face_fail' AND at >= ?",
                [since.isoformat()],
            )
        )
        return int(rows[0]["n"]) if rows else 0

    def unfinished(self) -> dict[str, Any] | None:
        """The most recent session not back at idle, if any."""
        rows = list(
            self._db.query(
                "SELECT * FROM checkout_sessions WHERE state != 'idle' ORDER BY updated_at DESC, rowid DESC"
                " LIMIT 1"
            )
        )
        return dict(rows[0]) if rows else None

    def events(self, session_id: str) -> list[dict[str, Any]]:
        """Every transition of one session, oldest first."""
        return [
            dict(row)
            for row in self._db.query(
                "SELECT at, event, from_state, to_state, detail FROM checkout_session_events"
                " WHERE session_id = ? ORDER BY seq",
                [session_id],
            )
        ]

    def settlement_of(self, chrg_bchno: str) -> dict[str, Any] | None:
        """The recorded settlement of a bill (msgid and amounts), if the ledger has one."""
        rows = list(
            self._db.query(
                "SELECT msgid, psn_no, identified_by, setl_time, medfee_sumamt, fund_pay_sumamt,"
                " psn_part_amt FROM settlements WHERE chrg_bchno = ?",
                [chrg_bchno],
            )
        )
        return dict(rows[0]) if rows else None


class Session:
    """The one checkout session of a terminal. Thread-safe; the patient sees only pass/fail and prompts."""

    def __init__(
        self,
        faces: FacePort,
        identifier: IdentifyPort,
        checkout: CheckoutPort,
        ledger: SettledCheck,
        journal: SessionJournal,
        clock: Clock,
        max_face_attempts: int = 3,
        timeout: timedelta = timedelta(seconds=120),
        receipt_timeout: timedelta = timedelta(seconds=60),
        liveness: LivenessFactory | None = None,
        offered_methods: Sequence[str] = ("face", "qr", "card", "id"),
        face_lockout: timedelta = timedelta(minutes=10),
    ) -> None:
        self._faces = faces
        self._identifier = identifier
        self._checkout = checkout
        self._ledger = ledger
        self._journal = journal
        self._clock = clock
        self._max_face_attempts = max_face_attempts
        self._timeout = timeout
        self._receipt_timeout = receipt_timeout
        self._liveness = liveness
        self._face_lockout = face_lockout
        # Face without a liveness check would let a photo pay: without one, face is simply not offered.
        self._methods = tuple(m for m in offered_methods if m != "face" or liveness is not None)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._version = 0
        self._attempts: deque[Attempt] = deque(maxlen=50)
        self._live = self._idle(prompt="welcome")
        self._last_outcome: str | None = None
        with self._lock:
            self._recover()

    # ---- read side -------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Increases on every change; the event stream waits on it."""
        return self._version

    @property
    def state(self) -> State:
        """The current state."""
        return self._live.state

    @property
    def psn_no(self) -> str | None:
        """Who the session identified (for the bill source), None before identification."""
        return self._live.psn_no

    @property
    def session_id(self) -> str:
        """The current session id."""
        return self._live.session_id

    def view(self) -> dict[str, Any]:
        """What the patient's screen shows: state, pass/fail, next prompt, bill and receipt; no scores."""
        with self._lock:
            live = self._live
            face_left = live.attempts.remaining if live.state is State.IDENTIFYING else 0
            methods = [m for m in self._methods if m != "face" or face_left > 0 or live.state is State.IDLE]
            out: dict[str, Any] = {
                "session_id": live.session_id,
                "state": live.state.value,
                "prompt": live.prompt,
                "result": live.last_result,
                "outcome": self._last_outcome,
                "face_available": "face" in self._methods
                and (live.state is State.IDLE or (live.state is State.IDENTIFYING and face_left > 0)),
                "face_attempts_left": face_left,
                "face_checking": live.liveness is not None,
                "challenge": live.challenge,
                "methods": methods,
                "version": self._version,
            }
            if live.psn_no and live.priced is not None:
                out["person"] = {"name": _mask_name(live.priced.person.psn_name)}
            if live.priced is not None and live.state in (State.PRICED, State.CONFIRMED, State.SETTLED):
                out["bill"] = priced_view(live.priced)
            elif live.bill is not None:
                out["bill_pending"] = str(live.bill.get("chrg_bchno", ""))
            if live.state is State.SETTLED and live.record is not None:
                out["receipt"] = dict(live.record)
            return out

    def diagnostics(self) -> dict[str, Any]:
        """Technician view: recent attempts with scores and timings, liveness wiring, the journal."""
        with self._lock:
            return {
                "session_id": self._live.session_id,
                "state": self._live.state.value,
                "liveness": "configured"
                if self._liveness
                else "not configured: face is not offered (no liveness check to rule out photos)",
                "max_face_attempts": self._max_face_attempts,
                "timeout_s": self._timeout.total_seconds(),
                "recent_attempts": [a.as_json() for a in reversed(self._attempts)],
                "events": self._journal.events(self._live.session_id),
            }

    def wait_for_change(self, since: int, timeout: float) -> int:
        """Block up to timeout seconds for a version newer than `since`; return the current version."""
        with self._changed:
            self._changed.wait_for(lambda: self._version != since, timeout)
            return self._version

    # ---- write side ------------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        """A patient begins: a fresh session asking how they want to identify."""
        with self._lock:
            self._expire_if_due()
            if self._live.state not in (State.IDLE, State.IDENTIFYING):
                raise SessionStateError("a checkout is already in progress on this terminal")
            if self._live.state is State.IDLE:
                fresh = self._idle(prompt="choose_method")
                fresh.state = State.IDENTIFYING
                self._live = fresh
                self._last_outcome = None
                self._commit("start", State.IDLE, "")
            return self.view()

    def face_frame(self, sensors: SensorFrame, claim_psn_no: str | None = None) -> dict[str, Any]:
        """One camera capture on the face path: the liveness challenge first, then 1:1 / 1:N on its frames.

        The answer is the state and the next prompt (and the challenge's cue) only; no scores.
        """
        with self._lock:
            self._require(State.IDENTIFYING, State.IDLE)
            if self._liveness is None or "face" not in self._methods:
                raise IdentityError(
                    "face is not offered on this terminal; please use QR code, card or ID number"
                )
            if self._live.state is State.IDLE:
                self.start()
            live = self._live
            try:
                live.attempts.check()
            except AttemptsExhaustedError:
                live.prompt = "face_exhausted"
                live.last_result = "fail"
                self._commit("face_refused", State.IDENTIFYING, "no face attempts left")
                raise
            began = time.perf_counter()
            if live.liveness is None:
                live.liveness = self._liveness()
            checker = live.liveness
            outcome = checker.feed(sensors)
            if outcome.status == "continue":
                live.challenge = outcome.cue
                live.prompt = "face_check"
                live.last_result = None
                self._touch()
                return self.view()
            live.liveness = None
            live.challenge = None
            if outcome.status != "pass":
                records = checker.diagnostics()
                last = records[-1] if records else None
                live.attempts.record(NoMatch(method="face-1:N"))
                reason = f"liveness: {last.reason}" if last else "liveness failed"
                scores = last.scores if last else {}
                return self._face_failed(reason, None, "fail", began, time.perf_counter(), scores)
            return self._identify_live(checker.identity_frames(), claim_psn_no, began)

    def _identify_live(
        self, frames: Sequence[Frame], claim_psn_no: str | None, began: float
    ) -> dict[str, Any]:
        """Identify on the live attempt's frames; every frame must name the same person."""
        live = self._live
        detected = time.perf_counter()
        outcome: Match | NoMatch
        try:
            observations = [self._faces.observe_primary(frame) for frame in frames]
            detected = time.perf_counter()
            if claim_psn_no:
                outcome = self._identifier.verify(observations[0], claim_psn_no)
            else:
                outcome = self._identifier.identify(observations[0])
            if isinstance(outcome, Match):
                for other in observations[1:]:
                    if isinstance(self._identifier.verify(other, outcome.psn_no), NoMatch):
                        outcome = NoMatch(method=outcome.method)
                        log.warning("face changed between the frames of one live attempt")
                        break
        except FaceError as exc:
            outcome = NoMatch(method="face-1:1" if claim_psn_no else "face-1:N")
            log.info("live attempt's frames have no usable face: %s", exc)
        except UnknownPersonError:
            outcome = NoMatch(method="face-1:1")
        live.attempts.record(outcome)
        if isinstance(outcome, NoMatch):
            return self._face_failed("no match", outcome.best_distance, "pass", began, detected)
        self._note_attempt(outcome.method, True, outcome.distance, "pass", "match", began, detected)
        return self._identified(outcome)

    def identify_credential(self, claim: IdentityClaim) -> dict[str, Any]:
        """Identify by QR / card / ID number: always offered, whatever happened with face."""
        with self._lock:
            self._require(State.IDENTIFYING, State.IDLE)
            if self._live.state is State.IDLE:
                self.start()
            began = time.perf_counter()
            try:
                match = self._identifier.by_credential(claim)
            except UnknownPersonError:
                self._note_attempt("credential", False, None, "-", "unknown credential", began, began)
                self._live.prompt = "credential_unknown"
                self._live.last_result = "fail"
                self._commit("credential_fail", State.IDENTIFYING, claim.mdtrt_cert_type.value)
                return self.view()
            self._note_attempt("credential", True, None, "-", claim.mdtrt_cert_type.value, began, began)
            return self._identified(match)

    def load_bill(self, bill: Bill) -> dict[str, Any]:
        """Attach the bill (HIS bill or pharmacy basket); priced at once when the patient is identified."""
        with self._lock:
            self._require(State.IDENTIFYING, State.IDENTIFIED, State.PRICED)
            live = self._live
            previous = live.state
            live.bill = _bill_json(bill)
            if live.state is State.IDENTIFYING:
                live.prompt = "choose_method"
                self._commit("bill", previous, bill.chrg_bchno)
                return self.view()
            return self._price(bill, previous)

    def confirm(self) -> dict[str, Any]:
        """The patient confirms the shown pre-settlement: record it once, then show the receipt."""
        with self._lock:
            self._require(State.PRICED)
            live = self._live
            priced = live.priced
            if priced is None or live.psn_no is None or live.method is None:
                raise SessionStateError("nothing is priced to confirm")
            # Journal the confirmation first: a crash after this line is recovered by asking the ledger.
            live.state = State.CONFIRMED
            live.prompt = "settling"
            self._commit("confirm", State.PRICED, priced.bill.chrg_bchno)
            if self._ledger.is_settled(priced.bill.chrg_bchno):
                return self._settled_from_ledger(priced.bill.chrg_bchno, State.CONFIRMED)
            try:
                record = self._checkout.settle(priced, Match(live.psn_no, live.method))
            except DuplicateSettlementError:
                return self._settled_from_ledger(priced.bill.chrg_bchno, State.CONFIRMED)
            except TerminalError as exc:
                if self._ledger.is_settled(priced.bill.chrg_bchno):
                    # Recorded after all (e.g. the error came after the commit): show it, never raise.
                    return self._settled_from_ledger(priced.bill.chrg_bchno, State.CONFIRMED)
                self._settle_failed(priced, live.psn_no, exc)
                raise
            live.msgid = record.msgid
            live.record = self._receipt(priced, record, live.method)
            live.state = State.SETTLED
            live.prompt = "take_receipt"
            live.last_result = "pass"
            self._commit("settled", State.CONFIRMED, record.msgid)
            return self.view()

    def finish(self) -> dict[str, Any]:
        """The receipt was taken: back to idle."""
        with self._lock:
            self._require(State.SETTLED)
            self._end("done", "finished")
            return self.view()

    def cancel(self) -> dict[str, Any]:
        """The patient (or cashier) cancels from any state; a recorded settlement is never undone here."""
        with self._lock:
            if self._live.state is State.CONFIRMED:
                raise SessionStateError("the settlement is being recorded; it cannot be cancelled now")
            if self._live.state is State.SETTLED:
                self._end("done", "finished")
            elif self._live.state is not State.IDLE:
                self._end("cancel", "cancelled")
            return self.view()

    def tick(self) -> bool:
        """Apply a due timeout; True when one fired. Never blocks behind a running face check."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            return self._expire_if_due()
        finally:
            self._lock.release()

    # ---- internals -------------------------------------------------------------------------------

    def _idle(self, prompt: str) -> _Live:
        now = self._clock.now()
        attempts = FaceAttempts(self._max_face_attempts)
        # Failures of earlier sessions inside the lockout window still count: otherwise cancelling and
        # starting again would hand a presentation attack fresh attempts (QR / card / ID stay offered).
        recent = self._journal.face_failures_since(now - self._face_lockout)
        for _ in range(min(recent, self._max_face_attempts)):
            attempts.record(NoMatch(method="face-1:N"))
        return _Live(
            session_id=uuid.uuid4().hex[:16],
            state=State.IDLE,
            started_at=now,
            updated_at=now,
            prompt=prompt,
            attempts=attempts,
        )

    def _require(self, *allowed: State) -> None:
        self._expire_if_due()
        if self._live.state not in allowed:
            wanted = " or ".join(s.value for s in allowed)
            raise SessionStateError(f"the checkout is {self._live.state.value}; this needs {wanted}")

    def _expire_if_due(self) -> bool:
        live = self._live
        if live.state in (State.IDLE, State.CONFIRMED):
            return False
        limit = self._receipt_timeout if live.state is State.SETTLED else self._timeout
        if self._clock.now() - live.updated_at < limit:
            return False
        if live.state is State.SETTLED:
            self._end("done", "finished")
        else:
            self._end("timeout", "timeout")
        return True

    def _end(self, event: str, outcome: str) -> None:
        previous = self._live.state
        self._live.state = State.IDLE
        self._live.prompt = "welcome"
        self._commit(event, previous, outcome)
        self._last_outcome = outcome
        self._live = self._idle(prompt="welcome")
        log.info("checkout session ended: %s", outcome)

    def _commit(self, event: str, from_state: State | None, detail: str) -> None:
        live = self._live
        live.updated_at = self._clock.now()
        live.face_failures = self._max_face_attempts - live.attempts.remaining
        self._journal.save(live, event, from_state, detail, live.updated_at)
        log.info(
            "session %s %s: %s → %s %s",
            live.session_id,
            event,
            from_state.value if from_state else "-",
            live.state.value,
            detail,
        )
        self._version += 1
        self._changed.notify_all()

    def _touch(self) -> None:
        """A change the patient's screen shows but the journal need not keep (a challenge step)."""
        self._live.updated_at = self._clock.now()
        self._version += 1
        self._changed.notify_all()

    def _face_failed(
        self,
        reason: str,
        distance: float | None,
        liveness: str,
        began: float,
        detected: float,
        scores: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:
        live = self._live
        self._note_attempt("face", False, distance, liveness, reason, began, detected, scores)
        live.last_result = "fail"
        live.prompt = "face_retry" if live.attempts.remaining > 0 else "face_exhausted"
        self._commit("face_fail", State.IDENTIFYING, f"{reason}; {live.attempts.remaining} left")
        return self.view()

    def _note_attempt(
        self,
        method: str,
        passed: bool,
        distance: float | None,
        liveness: str,
        reason: str,
        began: float,
        detected: float,
        scores: Mapping[str, float] | None = None,
    ) -> None:
        ended = time.perf_counter()
        self._attempts.append(
            Attempt(
                at=self._clock.now().isoformat(),
                session_id=self._live.session_id,
                method=method,
                passed=passed,
                distance=distance,
                liveness=liveness,
                reason=reason,
                detect_ms=(detected - began) * 1000,
                match_ms=(ended - detected) * 1000,
                scores=dict(scores or {}),
            )
        )

    def _identified(self, match: Match) -> dict[str, Any]:
        live = self._live
        live.psn_no = match.psn_no
        live.method = match.method
        live.last_result = "pass"
        live.state = State.IDENTIFIED
        live.prompt = "choose_bill"
        self._commit("identified", State.IDENTIFYING, match.method)
        if live.bill is not None:
            return self._price(bill_from_json(live.bill), State.IDENTIFIED)
        return self.view()

    def _price(self, bill: Bill, previous: State) -> dict[str, Any]:
        live = self._live
        assert_psn = live.psn_no
        if assert_psn is None:
            raise SessionStateError("nobody is identified yet")
        if self._ledger.is_settled(bill.chrg_bchno):
            raise SettlementError(f"bill {bill.chrg_bchno} is already settled")
        live.priced = self._checkout.price(bill, assert_psn)
        live.state = State.PRICED
        live.prompt = "confirm_bill"
        self._commit("priced", previous, bill.chrg_bchno)
        return self.view()

    def _receipt(self, priced: Priced, record: SettlementRecord, method: str) -> dict[str, Any]:
        info = priced.result.setlinfo
        return {
            "msgid": record.msgid,
            "setl_time": record.setl_time.isoformat(),
            # Settled while the upstream was unreachable: the receipt must say the amount is an estimate.
            "offline": record.offline,
            "identified_by": method,
            "name": _mask_name(info.psn_name),
            "chrg_bchno": priced.bill.chrg_bchno,
            "medfee_sumamt": str(info.medfee_sumamt),
            "fund_pay_sumamt": str(info.fund_pay_sumamt),
            "psn_part_amt": str(info.psn_part_amt),
            "acct_pay": str(info.acct_pay),
            "psn_cash_pay": str(info.psn_cash_pay),
        }

    def _settle_failed(self, priced: Priced, psn_no: str, exc: TerminalError) -> None:
        """Settling raised: never leave the session stuck in CONFIRMED; price again and ask again."""
        live = self._live
        chrg_bchno = priced.bill.chrg_bchno
        log.warning("settling %s failed: %s", chrg_bchno, exc)
        try:
            # Why price again: the usual cause is year-to-date totals that moved since the estimate.
            live.priced = self._checkout.price(priced.bill, psn_no)
        except TerminalError as again:
            log.warning("cannot price %s again: %s", chrg_bchno, again)
            self._end("settle_failed", "cancelled")
            return
        live.state = State.PRICED
        live.prompt = "confirm_again"
        live.last_result = "fail"
        self._commit("settle_failed", State.CONFIRMED, f"{type(exc).__name__}: {exc}")

    def _settled_from_ledger(self, chrg_bchno: str, previous: State) -> dict[str, Any]:
        """The ledger already holds this bill: show its receipt, never charge again."""
        live = self._live
        row = self._journal.settlement_of(chrg_bchno) or {}
        live.msgid = row.get("msgid")
        live.record = {
            "msgid": row.get("msgid", ""),
            "setl_time": row.get("setl_time", ""),
            "identified_by": row.get("identified_by", live.method or ""),
            "name": _mask_name(live.priced.person.psn_name) if live.priced else "",
            "chrg_bchno": chrg_bchno,
            "medfee_sumamt": row.get("medfee_sumamt", ""),
            "fund_pay_sumamt": row.get("fund_pay_sumamt", ""),
            "psn_part_amt": row.get("psn_part_amt", ""),
            "recovered": True,
        }
        live.state = State.SETTLED
        live.prompt = "take_receipt"
        live.last_result = "pass"
        self._commit("settled_already", previous, str(live.msgid))
        return self.view()

    def _recover(self) -> None:
        """Resume the session a restart interrupted; a confirmed one is never settled twice."""
        row = self._journal.unfinished()
        if row is None:
            return
        state = State(row["state"])
        live = _Live(
            session_id=row["session_id"],
            state=state,
            started_at=datetime.fromisoformat(row["started_at"]),
            updated_at=datetime.fromisoformat(row["updated_at"]),
            face_failures=int(row["face_failures"]),
            psn_no=row["psn_no"],
            method=row["method"],
            bill=json.loads(row["bill"]) if row["bill"] else None,
            msgid=row["msgid"],
            attempts=FaceAttempts(self._max_face_attempts),
        )
        for _ in range(live.face_failures):
            live.attempts.record(NoMatch(method="face-1:N"))
        self._live = live
        log.warning("recovering checkout session %s in state %s", live.session_id, state.value)
        try:
            self._resume(live, state)
        except (IdentityError, SettlementError) as exc:
            log.warning("recovered session %s cannot continue: %s", live.session_id, exc)
            self._end("recover_abandon", "cancelled")

    def _resume(self, live: _Live, state: State) -> None:
        bill = bill_from_json(live.bill) if live.bill is not None else None
        if state in (State.IDENTIFIED, State.IDENTIFYING):
            live.prompt = "choose_bill" if state is State.IDENTIFIED else "choose_method"
            self._commit("recover", state, "")
            return
        if bill is None or live.psn_no is None:
            self._end("recover_abandon", "cancelled")
            return
        if self._ledger.is_settled(bill.chrg_bchno):
            live.priced = self._checkout_price_quiet(bill, live.psn_no)
            self._settled_from_ledger(bill.chrg_bchno, state)
            return
        if state is State.SETTLED:
            # Journal says settled but the ledger does not: trust the ledger (money is only there).
            log.error(
                "session %s journalled settled but the ledger has no %s", live.session_id, bill.chrg_bchno
            )
        # Priced, or confirmed but never recorded: show the estimate again and ask once more.
        live.priced = self._checkout.price(bill, live.psn_no)
        live.state = State.PRICED
        live.prompt = "confirm_again" if state is not State.PRICED else "confirm_bill"
        self._commit("recover", state, bill.chrg_bchno)

    def _checkout_price_quiet(self, bill: Bill, psn_no: str) -> Priced | None:
        try:
            return self._checkout.price(bill, psn_no)
        except TerminalError:
            return None


def claim_from_input(method: str, value: str) -> IdentityClaim:
    """A credential claim from what the patient scanned, swiped or typed; IdentityError when malformed."""
    value = value.strip()
    if not value:
        raise IdentityError("empty credential")
    if method == "qr":
        return IdentityClaim(CertType.EC_TOKEN, value)
    if method == "card":
        return IdentityClaim(CertType.SOCIAL_SECURITY_CARD, value)
    if method == "id":
        if len(value) != 18 or not value[:17].isdigit() or not (value[17].isdigit() or value[17] in "Xx"):
            raise IdentityError("an ID number has 18 characters: 17 digits and a digit or X")
        return IdentityClaim(CertType.ID_NUMBER, value.upper())
    raise IdentityError(f"unknown credential method {method!r}; use qr, card or id")
