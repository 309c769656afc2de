"""The checkout session's journalled core: transitions, timeouts, pricing, settling and recovery.

terminal/pipeline/session.py adds what callers do (start, face, credentials, bill, confirm); this
module keeps what every step shares, so that each transition is journalled the same way.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from terminal.bill_json import bill_from_json
from terminal.domain import Bill, Match
from terminal.errors import IdentityError, SessionStateError, SettlementError, StoreError, TerminalError
from terminal.pipeline.attempt_limits import CheckoutAttempts, TerminalAttempts
from terminal.pipeline.checkout import Priced
from terminal.pipeline.payment import PaymentSaga
from terminal.pipeline.session_ports import CheckoutPort, JournalPort, LivenessFactory, SettledCheck
from terminal.pipeline.session_state import LiveSession, State
from terminal.pipeline.session_view import AttemptLog, patient_view, progress_view, recovered_receipt
from terminal.ports import Clock, FacePort, IdentifyPort

log = logging.getLogger(__name__)
# The kiosk warns this long before a step times out, with 继续 to keep the checkout.
TIMEOUT_WARNING = timedelta(seconds=15)


class SessionCore:
    """State, journal and the steps every transition shares. Callers use Session."""

    def __init__(
        self,
        faces: FacePort,
        identifier: IdentifyPort,
        checkout: CheckoutPort,
        ledger: SettledCheck,
        journal: JournalPort,
        clock: Clock,
        limits: TerminalAttempts,
        max_face_attempts: int = 3,
        max_credential_attempts: int = 5,
        timeout: timedelta = timedelta(seconds=120),
        receipt_timeout: timedelta = timedelta(seconds=60),
        liveness: LivenessFactory | None = None,
        offered_methods: Sequence[str] = ("face", "qr", "card", "id"),
        decision_frames: int = 3,
        payments: PaymentSaga | None = None,
    ) -> None:
        self._faces = faces
        self._identifier = identifier
        self._checkout = checkout
        self._ledger = ledger
        self._journal = journal
        self._clock = clock
        self._limits = limits
        self._max_face_attempts = max_face_attempts
        self._max_credential_attempts = max_credential_attempts
        self._timeout = timeout
        self._receipt_timeout = receipt_timeout
        self._liveness = liveness
        self._decision_frames = decision_frames
        # The cash share's saga (pipeline/payment.py); None: the terminal does not collect it.
        self._payments = payments
        self._last_payment: dict[str, Any] | None = None
        # Face without a liveness check would let a photo pay: without one, face is simply not offered.
        # A typed ID number only names whom a face 1:1 verifies, so it goes with face.
        self._methods = tuple(m for m in offered_methods if m not in ("face", "id") or liveness is not None)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._version = 0
        self._attempts = AttemptLog(50)
        # Faces the capture loop sees (None: no detector, or not counted since the last patient left).
        self._in_view: int | None = None
        self._warned = False
        self._live = self._idle(prompt="welcome")
        self._last_outcome: str | None = None
        # What the journal last committed (with the outcome shown): a step that fails before its journal
        # write commits is rolled back to this, so memory never runs ahead of the journal.
        self._saved: tuple[LiveSession, str | None] = (self._live.copy(), self._last_outcome)
        with self._lock:
            self._recover()
            self._saved = (self._live.copy(), self._last_outcome)

    @property
    def version(self) -> int:
        """Increases on every change; the event stream waits on it."""
        return self._version

    # Read without the lock (a face check may hold it for a while): the journalled state, never a step's
    # half-made one.
    @property
    def state(self) -> State:
        """The current state."""
        return self._saved[0].state

    @property
    def psn_no(self) -> str | None:
        """Who the session identified (for the bill source), None before identification."""
        return self._saved[0].psn_no

    @property
    def session_id(self) -> str:
        """The current session id."""
        return self._saved[0].session_id

    @property
    def limits(self) -> TerminalAttempts:
        """The terminal-wide attempt window (the technician page shows and resets it)."""
        return self._limits

    def view(self) -> dict[str, Any]:
        """What the patient's screen shows: state, pass/fail, next prompt, bill and receipt; no scores."""
        with self._lock:
            paused = self._limits.paused_until() if "face" in self._methods else None
            out = patient_view(self._live, self._methods, self._last_outcome, self._version, paused)
            now = self._clock.now()
            out.update(progress_view(self._live, now, self._in_view))
            left = self._time_left(now)
            out["timeout_left_s"] = None if left is None else max(0, math.ceil(left.total_seconds()))
            out["timeout_warning"] = left is not None and left <= TIMEOUT_WARNING
            return out

    def faces_seen(self, count: int) -> None:
        """The capture loop's count of faces before the camera (the kiosk starts face on exactly one).

        Never waits: a face check may hold the lock, and the next count comes a few frames later.
        """
        if count == self._in_view or self.state is not State.IDENTIFYING:
            return
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._in_view = count
            self._version += 1
            self._changed.notify_all()
        finally:
            self._lock.release()

    def _time_left(self, now: datetime) -> timedelta | None:
        """How long until the patient's step times out; None where no warning applies."""
        live = self._live
        if live.state in (State.IDLE, State.CONFIRMED, State.SETTLED):
            return None
        return self._timeout - (now - live.updated_at)

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
                "max_credential_attempts": self._max_credential_attempts,
                "timeout_s": self._timeout.total_seconds(),
                "recent_attempts": self._attempts.newest_first(),
                "terminal_attempts": self._limits.state(),
                "events": self._journal.events(self._live.session_id),
            }

    def wait_for_change(self, since: int, timeout: float) -> int:
        """Block up to timeout seconds for a version newer than `since`; return the current version."""
        with self._changed:
            self._changed.wait_for(lambda: self._version != since, timeout)
            return self._version

    # ---- shared steps ----------------------------------------------------------------------------

    @contextmanager
    def _step(self) -> Iterator[None]:
        """One caller's step under the lock: a storage failure anywhere in it rolls memory back."""
        with self._lock:
            try:
                yield
            except StoreError:
                self._rollback()
                raise

    def _rollback(self) -> None:
        """Back to what the journal last committed (the screen is told, it may have seen more)."""
        live, outcome = self._saved
        self._live, self._last_outcome = live.copy(), outcome
        self._version += 1
        self._changed.notify_all()

    def _idle(self, prompt: str) -> LiveSession:
        # A fresh budget per checkout: one patient's failures never show as the next one's. Attackers who
        # cancel and start again meet the terminal-wide window instead (attempt_limits.TerminalAttempts).
        attempts = CheckoutAttempts(self._max_face_attempts, self._max_credential_attempts)
        return LiveSession.fresh(self._clock.now(), prompt, attempts)

    def _require(self, *allowed: State) -> None:
        self._expire_if_due()
        if self._live.state not in allowed:
            wanted = " or ".join(s.value for s in allowed)
            raise SessionStateError(f"the checkout is {self._live.state.value}; this needs {wanted}")

    def _expire_if_due(self) -> bool:
        live = self._live
        if live.state is State.CONFIRMED:
            # Seen under the lock, a confirm is no longer running: it failed before it heard back.
            return self._recheck_confirmed()
        if live.state is State.IDLE:
            return False
        if live.state is State.PAYING:
            if self._clock.now() - live.updated_at < self._timeout:
                self._note_warning()
                return False
            self._abandon_payment("session timeout")
            return True
        limit = self._receipt_timeout if live.state is State.SETTLED else self._timeout
        if self._clock.now() - live.updated_at < limit:
            self._note_warning()
            return False
        if live.state is State.SETTLED:
            self._end("done", "finished")
        else:
            self._end("timeout", "timeout")
        return True

    def _note_warning(self) -> None:
        """A new view when the timeout warning comes or goes (the event stream sends it)."""
        left = self._time_left(self._clock.now())
        warning = left is not None and left <= TIMEOUT_WARNING
        if warning != self._warned:
            self._warned = warning
            self._version += 1
            self._changed.notify_all()

    def _end(self, event: str, outcome: str) -> None:
        previous = self._live.state
        self._close_face_attempt(False, f"face attempt abandoned: {outcome}")
        self._close_credential_attempt(False, f"typed ID not verified: {outcome}")
        self._live.state = State.IDLE
        self._live.prompt = "welcome"
        self._commit(event, previous, outcome)
        self._last_outcome = outcome
        self._live = self._idle(prompt="welcome")
        self._in_view = None  # the next patient's count comes from the camera afresh
        self._saved = (self._live.copy(), outcome)
        log.info("checkout session ended: %s", outcome)

    def _abandon_payment(self, reason: str) -> None:
        """The paying step gives up (pipeline/session_paying.py overrides this)."""
        self._end("timeout", reason)

    def _follow_payment(self, previous: State, event: str) -> dict[str, Any]:
        """Show where the payment stands (pipeline/session_paying.py overrides this)."""
        raise SessionStateError("this terminal does not collect payments")

    def _close_face_attempt(self, passed: bool, detail: str) -> None:
        """End the open face attempt in the terminal-wide journal (a failure may pause face)."""
        live = self._live
        live.liveness = None
        live.challenge = None
        live.challenge_step = None
        live.face_wanted = False
        live.probe = None
        if live.attempt_id is not None:
            attempt, live.attempt_id = live.attempt_id, None
            self._limits.end_face(attempt, passed, detail)

    def _close_credential_attempt(self, passed: bool, detail: str) -> None:
        """End the typed ID's open attempt (passed only when the face 1:1 it named passed)."""
        live = self._live
        if live.verify_attempt is not None:
            attempt, live.verify_attempt = live.verify_attempt, None
            self._limits.end_credential(attempt, passed, detail)

    def _commit(self, event: str, from_state: State | None, detail: str) -> None:
        live = self._live
        live.updated_at = self._clock.now()
        try:
            self._journal.save(live.row(), live.event(event, from_state, detail, live.updated_at))
        except BaseException:
            # Not journalled, so it did not happen: memory goes back to the last committed step.
            self._rollback()
            raise
        self._saved = (live.copy(), self._last_outcome)
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
        # A typed ID still open here was not what identified the patient (a QR code or card was).
        self._close_credential_attempt(False, "identified otherwise")
        live.psn_no = match.psn_no
        live.method = match.method
        live.verify = None
        live.last_result = "pass"
        live.state = State.IDENTIFIED
        live.prompt = "choose_bill"
        live.hints = self._hints_for(match.psn_no)
        self._commit("identified", State.IDENTIFYING, match.method)
        if live.bill is not None:
            return self._price(bill_from_json(live.bill), State.IDENTIFIED)
        return self.view()

    def _hints_for(self, psn_no: str) -> tuple[Mapping[str, Any], ...]:
        """政策找人 never blocks checkout: any failure finding hints shows none."""
        try:
            return tuple(self._checkout.benefit_hints(psn_no))
        except TerminalError as exc:
            log.warning("benefit hints unavailable: %s", exc.code)
            return ()

    def _price(self, bill: Bill, previous: State) -> dict[str, Any]:
        live = self._live
        psn_no = live.psn_no
        if psn_no is None:
            raise SessionStateError("nobody is identified yet")
        if self._ledger.is_settled(bill.chrg_bchno):
            raise SettlementError(f"bill {bill.chrg_bchno} is already settled")
        live.priced = self._checkout.price(bill, psn_no)
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
        if self._payments is not None and live.msgid is not None:
            # Settled, maybe not paid: the payment says whether the receipt may be shown.
            live.state = State.PAYING
            return self._follow_payment(previous, "settled_already")
        live.state = State.SETTLED
        live.prompt = "take_receipt"
        live.last_result = "pass"
        self._commit("settled_already", previous, str(live.msgid))
        return self.view()

    # ---- recovery --------------------------------------------------------------------------------

    def _recover(self) -> None:
        """Resume the session a restart interrupted; a confirmed one is never settled twice."""
        row = self._journal.unfinished()
        if row is None:
            return
        live = LiveSession.from_row(row, self._max_face_attempts, self._max_credential_attempts)
        state = live.state
        self._live = live
        log.warning("recovering checkout session %s in state %s", live.session_id, state.value)
        try:
            self._resume(live, state)
        except (IdentityError, SettlementError) as exc:
            log.warning("recovered session %s cannot continue: %s", live.session_id, exc)
            self._end("recover_abandon", "cancelled")

    def _recheck_confirmed(self) -> bool:
        """A confirm failed before the session heard back: settled in the ledger → receipt, else ask again."""
        live = self._live
        log.warning("session %s left confirmed: asking the ledger", live.session_id)
        try:
            self._resume(live, State.CONFIRMED, "confirm_recheck")
        except (IdentityError, SettlementError) as exc:
            log.warning("confirmed session %s cannot continue: %s", live.session_id, exc)
            self._end("confirm_recheck", "cancelled")
        return True

    def _resume(self, live: LiveSession, state: State, event: str = "recover") -> None:
        bill = bill_from_json(live.bill) if live.bill is not None else None
        if state is State.PAYING and self._payments is not None and live.msgid is not None:
            live.priced = self._checkout_price_quiet(bill, live.psn_no) if bill and live.psn_no else None
            self._follow_payment(State.PAYING, event)
            return
        if state in (State.IDENTIFIED, State.IDENTIFYING):
            live.prompt = "choose_bill" if state is State.IDENTIFIED else "choose_method"
            self._commit(event, state, "")
            return
        if bill is None or live.psn_no is None:
            self._end(f"{event}_abandon", "cancelled")
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
        self._commit(event, state, bill.chrg_bchno)

    def _checkout_price_quiet(self, bill: Bill, psn_no: str) -> Priced | None:
        try:
            return self._checkout.price(bill, psn_no)
        except TerminalError:
            return None
