"""Stage 5: the checkout session — one patient at one terminal, from hello to receipt.

idle → identifying (face / QR / card / ID) → identified → priced → confirmed → settled → idle,
with cancel and timeout from every state. Every transition is journalled in SQLite so a restart
resumes where the terminal was; a confirmed session is settled at most once (the ledger decides).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from terminal.bill_json import bill_from_json, bill_to_json
from terminal.domain import Bill, Frame, IdentityClaim, Match, NoMatch
from terminal.errors import (
    AttemptsExhaustedError,
    DuplicateSettlementError,
    IdentityError,
    SettlementError,
    TerminalError,
    UnknownPersonError,
)
from terminal.errors import SessionStateError as SessionStateError
from terminal.pipeline.checkout import Priced
from terminal.pipeline.identify import FaceAttempts, identify_frames
from terminal.pipeline.session_ports import CheckoutPort, JournalPort, LivenessFactory, SettledCheck
from terminal.pipeline.session_state import LiveSession, State
from terminal.pipeline.session_view import AttemptLog, patient_view, receipt_view, recovered_receipt
from terminal.ports import Clock, FacePort, IdentifyPort
from terminal.vision.liveness.sources import SensorFrame

log = logging.getLogger(__name__)


class Session:
    """The one checkout session of a terminal. Thread-safe; the patient sees only pass/fail and prompts."""

    def __init__(
        self,
        faces: FacePort,
        identifier: IdentifyPort,
        checkout: CheckoutPort,
        ledger: SettledCheck,
        journal: JournalPort,
        clock: Clock,
        max_face_attempts: int = 3,
        timeout: timedelta = timedelta(seconds=120),
        receipt_timeout: timedelta = timedelta(seconds=60),
        liveness: LivenessFactory | None = None,
        offered_methods: Sequence[str] = ("face", "qr", "card", "id"),
        face_lockout: timedelta = timedelta(minutes=10),
        decision_frames: int = 3,
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
        self._decision_frames = decision_frames
        # Face without a liveness check would let a photo pay: without one, face is simply not offered.
        self._methods = tuple(m for m in offered_methods if m != "face" or liveness is not None)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._version = 0
        self._attempts = AttemptLog(50)
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
            return patient_view(self._live, self._methods, self._last_outcome, self._version)

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
                "recent_attempts": self._attempts.newest_first(),
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
        """Decide once on a probe combined from the live attempt's quality-gated frames (one face)."""
        live = self._live
        needed = self._decision_frames
        decision = identify_frames(self._faces, self._identifier, frames, claim_psn_no, needed)
        outcome, detected = decision.outcome, decision.detected
        live.attempts.record(outcome)
        if isinstance(outcome, NoMatch):
            reason, distance, prompt = decision.reason, outcome.best_distance, decision.prompt
            return self._face_failed(reason, distance, "pass", began, detected, prompt=prompt)
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
            live.bill = bill_to_json(bill)
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
            live.record = receipt_view(priced, record, live.method)
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

    def _idle(self, prompt: str) -> LiveSession:
        now = self._clock.now()
        # Failures of earlier sessions inside the lockout window still count: otherwise cancelling and
        # starting again would hand a presentation attack fresh attempts (QR / card / ID stay offered).
        recent = self._journal.face_failures_since(now - self._face_lockout)
        attempts = FaceAttempts(self._max_face_attempts, failed=recent)
        return LiveSession.fresh(now, prompt, attempts)

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
        self._journal.save(live.row(), live.event(event, from_state, detail, live.updated_at))
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
        prompt: str | None = None,
    ) -> dict[str, Any]:
        live = self._live
        self._note_attempt("face", False, distance, liveness, reason, began, detected, scores)
        live.last_result = "fail"
        live.prompt = (prompt or "face_retry") if live.attempts.remaining > 0 else "face_exhausted"
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
        at, sid = self._clock.now().isoformat(), self._live.session_id
        self._attempts.note(at, sid, method, passed, distance, liveness, reason, began, detected, scores)

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
        row = self._ledger.settlement_of(chrg_bchno) or {}
        live.msgid = row.get("msgid")
        live.record = recovered_receipt(chrg_bchno, row, live.method or "", live.priced)
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
        live = LiveSession.from_row(row, self._max_face_attempts)
        state = live.state
        self._live = live
        log.warning("recovering checkout session %s in state %s", live.session_id, state.value)
        try:
            self._resume(live, state)
        except (IdentityError, SettlementError) as exc:
            log.warning("recovered session %s cannot continue: %s", live.session_id, exc)
            self._end("recover_abandon", "cancelled")

    def _resume(self, live: LiveSession, state: State) -> None:
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
