"""The checkout session's paying step: between the insurance settlement and the receipt.

confirmed → (settlement recorded) → paying → settled, or → idle with outcome "not_charged" when the
payment saga (pipeline/payment.py) ends reversed. The kiosk shows a QR (pay_qr), the counter scans the
patient's payment code (pay_code); both are then polled (poll_payment). Cancel and the session timeout
abandon the payment: the order is closed, the settlement reversed, and the patient told 没有扣费.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from terminal.errors import SessionChangedError, SessionStateError, TerminalError
from terminal.payment_types import Payment
from terminal.pipeline.payment import DONE, NO_CASH, PAID, REFUND_MANUAL, REVERSED, PaymentSaga
from terminal.pipeline.session_core import SessionCore
from terminal.pipeline.session_state import State

log = logging.getLogger(__name__)

# How a checkout ends when the settlement was undone: nothing charged, or charged and the refund left to
# the counter (the gateway refused it for good).
ENDED_UNPAID = frozenset({"not_charged", "refund_at_counter"})


def payment_view(
    payment: Payment, counter_fallback: bool, poll_s: float = 2.0, now: datetime | None = None
) -> dict[str, Any]:
    """What the screens show of a payment: the cash due now, the QR, its state; never gateway internals."""
    fen = payment.fen if payment.fen is not None else payment.estimate_fen
    out: dict[str, Any] = {
        "state": payment.state,
        "cash_due": f"{fen // 100}.{fen % 100:02d}",
        "basis": payment.basis,
        "channel": payment.channel,
        "wallet": payment.wallet,
        "transaction_id": payment.transaction_id,
        "out_trade_no": payment.out_trade_no,
        "paid": payment.state == PAID,
        "poll_s": poll_s,
    }
    if payment.code_url and payment.state == "charging":
        out["code_url"] = payment.code_url
        out["expires_at"] = payment.expires_at.isoformat() if payment.expires_at else None
        if payment.expires_at is not None and now is not None:
            # Seconds left by the terminal's clock: the page counts down from this, never from its own
            # clock, which may differ from the terminal's (a display on another machine, a skewed clock).
            out["expires_in_s"] = max(0, int((payment.expires_at - now).total_seconds()))
    if payment.state == REVERSED:
        out["reason"] = payment.reason
        out["counter"] = counter_fallback and "unreachable" in payment.reason
    if payment.state == REFUND_MANUAL:
        # Charged, and the gateway would not refund it: the counter hands the money back.
        out["reason"] = payment.reason
        out["refund_at_counter"] = True
    return out


class PayingSession(SessionCore):
    """SessionCore with the payment saga's step; Session (pipeline/session.py) builds on it."""

    def view(self) -> dict[str, Any]:
        """The core's view, with the payment: the cash due now, the QR and its state, or why not charged."""
        with self._lock:
            out = super().view()
            live = self._live
            if live.state is State.PAYING and self._payments is not None and live.msgid is not None:
                found = self._payments.get(live.msgid)
                out["payment"] = self._payment_view(found)
            elif live.state is State.IDLE and self._last_outcome in ENDED_UNPAID and self._last_payment:
                out["payment"] = self._last_payment
            return out

    @property
    def collects_payments(self) -> bool:
        """Whether this session collects the cash share through a payment gateway."""
        return self._payments is not None

    def payment_due(self) -> str | None:
        """The msgid of the payment this session waits for (the barcode reader then scans codes)."""
        saved = self._saved[0]
        return saved.msgid if saved.state is State.PAYING else None

    def pay_qr(self, session_id: str) -> dict[str, Any]:
        """The patient pays by scanning the kiosk's QR: create (or show again) the order."""
        with self._step():
            msgid = self._paying(session_id)
            self._payments_or_fail().start_qr(msgid)
            return self._follow_payment(State.PAYING, "pay_qr")

    def pay_code(self, session_id: str, auth_code: str, actor: str = "terminal") -> dict[str, Any]:
        """The counter scanned the patient's payment code: charge it."""
        with self._step():
            msgid = self._paying(session_id)
            self._payments_or_fail().pay_code(msgid, auth_code, actor)
            return self._follow_payment(State.PAYING, "pay_code")

    def pay_scanned_code(self, auth_code: str, actor: str = "barcode") -> dict[str, Any]:
        """The terminal's barcode reader read a payment code: charge it for this session's payment."""
        with self._step():
            return self.pay_code(self._live.session_id, auth_code, actor)

    def poll_payment(self) -> dict[str, Any]:
        """Ask the gateway once where the payment stands (the pages call this every few seconds)."""
        with self._step():
            self._expire_if_due()
            if self._live.state is State.PAYING and self._live.msgid is not None:
                self._payments_or_fail().poll(self._live.msgid)
                return self._follow_payment(State.PAYING, "poll")
            return self.view()

    def recover_payments(self) -> int:
        """Resume every unfinished saga but this session's own (start-up and tick); how many ended."""
        if self._payments is None:
            return 0
        with self._step():
            own = [self._live.msgid] if self._live.state is State.PAYING and self._live.msgid else []
            return len(self._payments.recover(skip=own))

    # ---- shared with the core ----------------------------------------------------------------------

    def _after_settle(self, msgid: str) -> dict[str, Any] | None:
        """Right after the settlement committed: into the paying step, or None when nothing is collected."""
        if self._payments is None:
            return None
        self._live.state = State.PAYING
        self._live.prompt = "pay"
        self._commit("settled_unpaid", State.CONFIRMED, msgid)
        try:
            self._payments.decide(msgid)
        except TerminalError as exc:
            log.warning("payment of %s not started: %s", msgid, exc)
        return self._follow_payment(State.PAYING, "amount")

    def _abandon_payment(self, reason: str) -> None:
        """Cancel or timeout while paying: the saga gives up; the session ends once it is reversed."""
        msgid = self._live.msgid
        if self._payments is None or msgid is None:
            self._end("cancel", "cancelled")
            return
        payment = self._payments.abandon(msgid, reason)
        if payment.state in DONE:
            self._follow_payment(State.PAYING, "abandon_late")
            return
        if payment.state in (REVERSED, REFUND_MANUAL):
            self._end_not_charged(payment, reason)
            return
        # The gateway has not answered the close yet: the payment stays, recovery finishes it.
        self._live.prompt = "payment_checking"
        self._commit("pay_abandon", State.PAYING, reason)

    def _follow_payment(self, previous: State, event: str) -> dict[str, Any]:
        live = self._live
        assert self._payments is not None and live.msgid is not None
        payment = self._payments.get(live.msgid)
        if payment.state in DONE:
            receipt = dict(live.record or {})
            # 支付成功 only when both parts are done: the cash share paid here, or none to pay.
            complete = payment.state in (PAID, NO_CASH)
            view = self._payment_view(payment)
            live.record = {**receipt, "payment": view, "complete": complete}
            live.state = State.SETTLED
            live.prompt = "take_receipt"
            live.last_result = "pass"
            self._commit("paid", previous, payment.state)
        elif payment.state in (REVERSED, REFUND_MANUAL):
            self._end_not_charged(payment, payment.reason)
        else:
            live.prompt = "pay"
            if event == "poll":
                self._touch()
            else:
                self._commit(event, previous, payment.state)
        return self.view()

    def _end_not_charged(self, payment: Payment, reason: str) -> None:
        self._last_payment = self._payment_view(payment)
        outcome = "refund_at_counter" if payment.state == REFUND_MANUAL else "not_charged"
        self._end(outcome, outcome)
        log.info("checkout ended, nothing charged: %s", reason)

    def _paying(self, session_id: str) -> str:
        self._require(State.PAYING)
        if session_id != self._live.session_id:
            raise SessionChangedError("the checkout session changed; this payment was asked for another one")
        if self._live.msgid is None:
            raise SessionStateError("no settlement awaits payment")
        return self._live.msgid

    def _payments_or_fail(self) -> PaymentSaga:
        if self._payments is None:
            raise SessionStateError("this terminal does not collect payments")
        return self._payments

    def _payment_view(self, payment: Payment) -> dict[str, Any]:
        policy = self._payments.policy if self._payments is not None else None
        if policy is None:
            return payment_view(payment, False, now=self._clock.now())
        return payment_view(payment, policy.counter_fallback, policy.poll_s, self._clock.now())
