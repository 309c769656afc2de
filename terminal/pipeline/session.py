"""Stage 5: the checkout session — one patient at one terminal, from hello to receipt.

idle → identifying (face / QR / card / typed ID + face 1:1) → identified → priced → confirmed →
settled → idle, with cancel and timeout from every state. Every transition is journalled in SQLite so
a restart resumes where the terminal was; a confirmed session is settled at most once (the ledger
decides). Frames come from the terminal's own camera through the capture loop, never from a client;
QR and card claims arrive proven by the terminal's readers; every money step names the session and
the amounts the patient was shown, and anything that changed in between is refused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from terminal.bill_json import bill_to_json
from terminal.domain import Bill, CertType, FaceObservation, Frame, IdentityClaim, Match, NoMatch
from terminal.errors import (
    AttemptsExhaustedError,
    CredentialAttemptsError,
    DuplicateSettlementError,
    FacePausedError,
    IdentityError,
    SessionChangedError,
    StoreError,
    TerminalError,
    UnknownPersonError,
)
from terminal.errors import SessionStateError as SessionStateError
from terminal.pipeline.identify import SECOND_FACTOR_PROMPT, identify_frames, last4_from_input
from terminal.pipeline.session_paying import PayingSession
from terminal.pipeline.session_state import State
from terminal.pipeline.session_view import amounts_digest, mask_id_number, receipt_view
from terminal.vision.liveness.sources import SensorFrame

log = logging.getLogger(__name__)


class Session(PayingSession):
    """The one checkout session of a terminal. Thread-safe; the patient sees only pass/fail and prompts."""

    def start(self) -> dict[str, Any]:
        """A patient begins: a fresh session asking how they want to identify."""
        with self._step():
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

    # ---- face ------------------------------------------------------------------------------------

    def begin_face(self) -> dict[str, Any]:
        """The patient taps face: the capture loop feeds the terminal's camera until the attempt ends.

        Tapping again while an attempt runs ends that one as failed: a new start never redraws the
        random challenge for free.
        """
        with self._step():
            self._require(State.IDENTIFYING, State.IDLE)
            self._require_face_offered()
            if self._live.state is State.IDLE:
                self.start()
            live = self._live
            if live.attempt_id is not None:
                self._close_face_attempt(False, "face attempt restarted")
                self._commit("face_fail", State.IDENTIFYING, "restarted before the challenge ended")
            self._check_face_budget()
            live.face_wanted = True
            live.challenge = None
            live.challenge_step = None
            live.last_result = None
            live.prompt = "face_verify" if live.verify else "face_check"
            self._commit("face_start", State.IDENTIFYING, "1:1" if live.verify else "1:N")
            return self.view()

    def previewing(self) -> bool:
        """Whether a patient is identifying, so the camera and its preview are in use."""
        return self._saved[0].state is State.IDENTIFYING

    def wants_frames(self) -> bool:
        """Whether a face attempt is waiting for camera frames."""
        with self._lock:
            return self._live.state is State.IDENTIFYING and self._live.face_wanted

    def face_frame(self, sensors: SensorFrame) -> dict[str, Any]:
        """One capture of the terminal's camera: the liveness challenge first, then 1:1 / 1:N on its frames.

        The first frame starts the attempt, and from then on it counts as failed unless it passes.
        The answer is the state and the next prompt (and the challenge's cue) only; no scores.
        """
        with self._step():
            self._require(State.IDENTIFYING)
            live = self._live
            if not live.face_wanted:
                raise SessionStateError("no face attempt is running; tap face first")
            if live.liveness is None:
                self._open_face_attempt()
            checker = live.liveness
            assert checker is not None
            began = time.perf_counter()
            outcome = checker.feed(sensors)
            if outcome.status == "continue":
                live.challenge = outcome.cue
                live.challenge_step = (
                    (outcome.step, outcome.steps, outcome.step_ends) if outcome.steps else None
                )
                live.prompt = "face_verify" if live.verify else "face_check"
                live.last_result = None
                self._touch()
                return self.view()
            if outcome.status != "pass":
                records = checker.diagnostics()
                last = records[-1] if records else None
                reason = f"liveness: {last.reason}" if last else "liveness failed"
                scores = last.scores if last else {}
                return self._face_failed(reason, None, "fail", began, time.perf_counter(), scores)
            return self._identify_live(checker.identity_frames(), began)

    def abandon_face(self, reason: str) -> dict[str, Any]:
        """The running attempt cannot go on (the camera was lost): it ends as failed, QR / card stay."""
        with self._step():
            live = self._live
            if live.state is not State.IDENTIFYING or not live.face_wanted:
                return self.view()
            if live.attempt_id is None:
                live.face_wanted = False
                live.prompt = "camera_unavailable"
                self._commit("face_abandon", State.IDENTIFYING, reason)
                return self.view()
            now = time.perf_counter()
            return self._face_failed(reason, None, "-", now, now, prompt="camera_unavailable")

    def _require_face_offered(self) -> None:
        if self._liveness is None or "face" not in self._methods:
            raise IdentityError("face is not offered on this terminal; please use QR code or card")

    def _check_face_budget(self) -> None:
        """Refuse a face attempt this checkout or the terminal has no room for; the prompt says which."""
        live = self._live
        paused = self._limits.paused_until()
        if paused is not None or live.attempts.face_remaining == 0:
            live.face_wanted = False
            live.last_result = "fail"
            live.prompt = "face_paused" if paused is not None else "face_exhausted"
            self._commit("face_refused", State.IDENTIFYING, live.prompt)
            if paused is not None:
                raise FacePausedError(f"face recognition is paused on this terminal until {paused:%H:%M}")
            raise AttemptsExhaustedError(
                "face recognition is not available for this checkout; please use QR code or card"
            )

    def _open_face_attempt(self) -> None:
        """The first frame of a challenge: the attempt starts and counts from now on."""
        live = self._live
        try:
            self._check_face_budget()
            live.attempt_id = self._limits.begin_face(live.session_id)
        except AttemptsExhaustedError:
            live.face_wanted = False
            raise
        live.attempts.start_face()
        assert self._liveness is not None
        live.liveness = self._liveness()
        self._commit("face_begin", State.IDENTIFYING, f"{live.attempts.face_remaining} left after this")

    def _identify_live(self, frames: Sequence[Frame], began: float) -> dict[str, Any]:
        """Decide once on a probe combined from the live attempt's quality-gated frames (one face)."""
        live = self._live
        claim = live.verify[0] if live.verify else None
        if claim == "":
            # The typed ID number belongs to nobody enrolled; the patient learns no more than a no-match.
            now = time.perf_counter()
            return self._face_failed("typed ID number is not enrolled", None, "pass", began, now)
        decision = identify_frames(self._faces, self._identifier, frames, claim, self._decision_frames)
        outcome, detected = decision.outcome, decision.detected
        if decision.prompt == SECOND_FACTOR_PROMPT and decision.probe is not None:
            return self._ask_second_factor(decision.probe, began, detected)
        if isinstance(outcome, NoMatch):
            reason, distance, prompt = decision.reason, outcome.best_distance, decision.prompt
            return self._face_failed(reason, distance, "pass", began, detected, prompt=prompt)
        self._note_attempt(outcome.method, True, outcome.distance, "pass", "match", began, detected)
        self._close_face_attempt(True, outcome.method)
        if claim:
            self._close_credential_attempt(True, "face 1:1 passed")
        return self._identified(outcome)

    def _ask_second_factor(self, probe: FaceObservation, began: float, detected: float) -> dict[str, Any]:
        """The gallery is above the 1:N cap: the attempt stays open while the keypad asks the last four."""
        live = self._live
        self._note_attempt("face", False, None, "pass", "second factor asked", began, detected)
        live.liveness = None
        live.challenge = None
        live.challenge_step = None
        live.face_wanted = False
        live.probe = probe
        live.last_result = None
        live.prompt = SECOND_FACTOR_PROMPT
        self._commit("second_factor", State.IDENTIFYING, "ID number's last four asked")
        return self.view()

    def second_factor(self, typed: str) -> dict[str, Any]:
        """The last four characters of the ID number: 1:N runs once among the people whose number ends so.

        Each entry spends one typed ID number of the checkout and counts in the terminal-wide window like
        one, and ends the face attempt whatever it finds: a stranger cannot try bucket after bucket with
        one face. A malformed entry is refused before anything is counted.
        """
        with self._step():
            self._require(State.IDENTIFYING)
            live = self._live
            probe = live.probe
            if probe is None:
                raise SessionStateError("no face check is waiting for the ID number's last four")
            last4 = last4_from_input(typed)
            try:
                live.attempts.enter_credential()
            except CredentialAttemptsError:
                self._close_face_attempt(False, "second factor: too many typed numbers")
                live.last_result = "fail"
                live.prompt = "credential_exhausted"
                self._commit("credential_refused", State.IDENTIFYING, "too many ID numbers")
                raise
            live.verify_attempt = self._limits.begin_credential(live.session_id)
            live.probe = None
            began = time.perf_counter()
            outcome = self._identifier.identify(probe, last4)
            now = time.perf_counter()
            if isinstance(outcome, NoMatch):
                self._close_credential_attempt(False, "second factor: no match")
                return self._face_failed(
                    "no match among the ID's last four", outcome.best_distance, "pass", began, now
                )
            self._note_attempt(
                outcome.method, True, outcome.distance, "pass", "match (last four)", began, now
            )
            self._close_face_attempt(True, "face-1:N with the ID's last four")
            self._close_credential_attempt(True, "second factor matched")
            return self._identified(outcome)

    def _face_failed(
        self,
        reason: str,
        distance: float | None,
        liveness: str,
        began: float,
        detected: float,
        scores: dict[str, float] | None = None,
        prompt: str | None = None,
    ) -> dict[str, Any]:
        live = self._live
        self._note_attempt("face", False, distance, liveness, reason, began, detected, scores)
        self._close_face_attempt(False, reason)
        live.last_result = "fail"
        if self._limits.paused_until() is not None:
            live.prompt = "face_paused"
        elif live.attempts.face_remaining == 0:
            live.prompt = "face_exhausted"
        else:
            live.prompt = prompt or "face_retry"
        self._commit("face_fail", State.IDENTIFYING, f"{reason}; {live.attempts.face_remaining} left")
        return self.view()

    # ---- credentials -----------------------------------------------------------------------------

    def identify_credential(self, claim: IdentityClaim) -> dict[str, Any]:
        """A QR code or card the terminal's reader proved identifies; a typed ID names whom face verifies."""
        with self._step():
            self._require(State.IDENTIFYING, State.IDLE)
            if self._live.state is State.IDLE:
                self.start()
            if claim.mdtrt_cert_type is CertType.ID_NUMBER:
                return self._name_for_face(claim)
            if claim.psn_no is None:
                # Only the reader worker sets psn_no, once the upstream or the card's chip proved possession.
                raise IdentityError("a QR code or card must be read and verified by this terminal's reader")
            began = time.perf_counter()
            self._note_attempt("credential", True, None, "-", claim.mdtrt_cert_type.value, began, began)
            return self._identified(Match(psn_no=claim.psn_no, method="credential"))

    def credential_refused(self, method: str, reason: str) -> dict[str, Any]:
        """A scanned QR code or inserted card could not be verified: counted in the terminal's window."""
        with self._step():
            self._require(State.IDENTIFYING, State.IDLE)
            if self._live.state is State.IDLE:
                self.start()
            live = self._live
            began = time.perf_counter()
            self._note_attempt("credential", False, None, "-", f"{method}: {reason}", began, began)
            self._limits.credential_failed(live.session_id, f"{method}: {reason}")
            live.last_result = "fail"
            live.prompt = "credential_refused"
            self._commit("credential_fail", State.IDENTIFYING, f"{method}: {reason}")
            return self.view()

    def _name_for_face(self, claim: IdentityClaim) -> dict[str, Any]:
        """A typed ID number only names whom a face 1:1 must verify; alone it identifies nobody.

        Every number counts in the terminal-wide window until the face check it names passes, known or
        not, and an unknown number is answered like a known one: neither the screen nor the window
        tells who is enrolled here.
        """
        live = self._live
        if "id" not in self._methods:
            raise IdentityError("a typed ID number needs a face check, which this terminal does not offer")
        try:
            self._check_face_budget()
            live.attempts.enter_credential()
        except CredentialAttemptsError:
            live.last_result = "fail"
            live.prompt = "credential_exhausted"
            self._commit("credential_refused", State.IDENTIFYING, "too many ID numbers")
            raise
        self._close_credential_attempt(False, "another ID number was typed")
        live.verify_attempt = self._limits.begin_credential(live.session_id)
        shown = mask_id_number(claim.mdtrt_cert_no)
        try:
            target = self._identifier.by_credential(claim).psn_no
        except UnknownPersonError:
            target = ""
        live.verify = (target, shown)
        live.last_result = None
        live.prompt = "face_verify"
        self._commit("id_entered", State.IDENTIFYING, shown)
        return self.view()

    # ---- bill and money --------------------------------------------------------------------------

    def load_bill(self, bill: Bill, session_id: str, owner: str | None = None) -> dict[str, Any]:
        """Attach a bill to this session; priced at once when the patient is identified.

        `session_id` is the session the caller looked at; `owner` the patient whose pending bills the
        bill came from. Both are checked here, under the session's lock, so a bill fetched for one
        patient can never be loaded into another patient's session.
        """
        with self._step():
            self._require(State.IDENTIFYING, State.IDENTIFIED, State.PRICED)
            live = self._live
            if session_id != live.session_id:
                raise SessionChangedError("the checkout session changed; this bill was asked for another one")
            if owner is not None and owner != live.psn_no:
                raise SessionChangedError("the bill was listed for another patient than the one identified")
            previous = live.state
            live.bill = bill_to_json(bill)
            if live.state is State.IDENTIFYING:
                live.prompt = "choose_method"
                self._commit("bill", previous, bill.chrg_bchno)
                return self.view()
            return self._price(bill, previous)

    def back_to_bills(self, session_id: str) -> dict[str, Any]:
        """The patient leaves a priced bill unconfirmed and goes back to the list (nothing was charged)."""
        with self._step():
            self._require(State.PRICED)
            live = self._live
            if session_id != live.session_id:
                raise SessionChangedError("the checkout session changed since the bill was shown")
            shown = live.priced.bill.chrg_bchno if live.priced else ""
            live.bill = None
            live.priced = None
            live.state = State.IDENTIFIED
            live.prompt = "choose_bill"
            self._commit("back_to_bills", State.PRICED, shown)
            return self.view()

    def confirm(self, session_id: str, chrg_bchno: str, digest: str) -> dict[str, Any]:
        """The patient confirms what was shown: recorded once, only if session, bill and amounts match."""
        with self._step():
            self._require(State.PRICED)
            live = self._live
            priced = live.priced
            if priced is None or live.psn_no is None or live.method is None:
                raise SessionStateError("nothing is priced to confirm")
            if session_id != live.session_id or chrg_bchno != priced.bill.chrg_bchno:
                raise SessionChangedError("the checkout or its bill changed since it was shown")
            if digest != amounts_digest(live.session_id, priced):
                live.prompt = "amounts_changed"
                self._touch()
                raise SessionChangedError("the amounts changed since they were shown; check them again")
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
            paying = self._after_settle(record.msgid)
            if paying is not None:
                return paying
            live.state = State.SETTLED
            live.prompt = "take_receipt"
            live.last_result = "pass"
            self._commit("settled", State.CONFIRMED, record.msgid)
            return self.view()

    def keep_alive(self) -> dict[str, Any]:
        """The patient tapped 继续 on the timeout warning: the step's time starts again."""
        with self._step():
            self._require(State.IDENTIFYING, State.IDENTIFIED, State.PRICED, State.PAYING)
            self._touch()
            self._note_warning()
            return self.view()

    def finish(self) -> dict[str, Any]:
        """The receipt was taken: back to idle."""
        with self._step():
            self._require(State.SETTLED)
            self._end("done", "finished")
            return self.view()

    def cancel(self) -> dict[str, Any]:
        """The patient (or cashier) cancels from any state; a recorded settlement is never undone here."""
        with self._step():
            if self._live.state is State.CONFIRMED:
                # A confirm that failed before the session heard back: the ledger says where it stands.
                self._recheck_confirmed()
            if self._live.state is State.CONFIRMED:
                raise SessionStateError("the settlement is being recorded; it cannot be cancelled now")
            if self._live.state is State.PAYING:
                self._abandon_payment("cancelled by the patient")
            elif self._live.state is State.SETTLED:
                self._end("done", "finished")
            elif self._live.state is not State.IDLE:
                self._end("cancel", "cancelled")
            return self.view()

    def tick(self) -> bool:
        """Apply a due timeout; True when one fired. Never blocks behind a running face check."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            with self._step():
                return self._expire_if_due()
        except StoreError as exc:
            # The session is as the journal last had it (_step restored it); the next tick tries again.
            log.warning("session tick could not be journalled: %s", exc)
            return False
        finally:
            self._lock.release()
