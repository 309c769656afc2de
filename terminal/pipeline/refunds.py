"""A counter refund (退费) of a whole settlement: approved by two people, insurance first, then the money.

paid | no_cash | external → withdrawing (approved: a cashier asks, a different supervisor signs in; both in
the audit) → the insurance part undone (the queued 2207 voided or a 2208 queued, totals restored: one
transaction) → refund_due → the payment refunded at the gateway under its own idempotent out_refund_no →
refunded. Each step is durable before the next call, so a crash anywhere leaves a state recovery
finishes (PaymentSaga.resume calls `finish`); a refund the gateway refuses stays refund_due, noted, and is
tried again under the same number, until it has been refused `refund_attempts` times (PayPolicy's budget):
then it ends refund_manual, owed by hand (store/hand_refunds.py). Only definite refusals count; a lost or
unreachable answer may have gone through and is asked again. A settlement the patient paid outside the
terminal (external), or with no cash share, ends refunded once the insurance part is undone: the counter
hands back any cash.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from terminal.errors import (
    ApprovalRequiredError,
    PaymentUnavailableError,
    PaymentUnknownOutcomeError,
    RefundError,
)
from terminal.payment_types import Payment
from terminal.pipeline.payment_ports import PaymentLedger
from terminal.ports import Clock, PaymentGateway, Revert

log = logging.getLogger(__name__)

WITHDRAWING = "withdrawing"  # approved; the insurance part not yet undone
REFUND_DUE = "refund_due"  # insurance undone; the patient's money still to go back through the gateway
REFUNDED = "refunded"  # both undone
REFUND_MANUAL = "refund_manual"  # insurance undone; the gateway refused the refund for good: staff pay back
REFUND_ATTEMPTS = 3  # refunds the gateway refuses before staff are asked to pay back by hand (PayPolicy)
SUPERVISOR = "supervisor"


def counter_refund_no(out_trade_no: str) -> str:
    """The counter refund's number: derived from the order, so a retried refund is the same refund."""
    return "RC" + out_trade_no[2:]


@dataclass(frozen=True)
class Staff:
    """A signed-in person as the refund needs them: who (for the audit) and in which role."""

    staff_id: str
    role: str

    @property
    def actor(self) -> str:
        """How the audit names this person."""
        return f"staff:{self.staff_id}"


class CounterRefunds:
    """Starts approved refunds and drives them (and recovered ones) to refunded."""

    def __init__(
        self,
        ledger: PaymentLedger,
        gateway: PaymentGateway | None,
        clock: Clock,
        revert: Revert,
        refund_attempts: int = REFUND_ATTEMPTS,
    ) -> None:
        self._ledger = ledger
        self._gateway = gateway
        self._clock = clock
        self._revert = revert
        self._refund_attempts = refund_attempts

    def refund(self, msgid: str, cashier: Staff, supervisor: Staff, reason: str) -> Payment:
        """Refund one settlement whole; ApprovalRequiredError unless a different supervisor approved it."""
        if supervisor.role != SUPERVISOR:
            raise ApprovalRequiredError(f"{supervisor.staff_id} is a {supervisor.role}, not a supervisor")
        if supervisor.staff_id == cashier.staff_id:
            raise ApprovalRequiredError(f"{cashier.staff_id} cannot approve their own refund")
        if not reason.strip():
            raise ApprovalRequiredError("a refund needs a reason")
        current = self._ledger.get(msgid)
        number = counter_refund_no(current.out_trade_no) if current is not None else ""
        self._ledger.approve_refund(
            msgid, self._clock.now(), cashier.actor, supervisor.actor, reason.strip(), number
        )
        return self.finish(msgid, cashier.actor)

    def finish(self, msgid: str, actor: str = "terminal") -> Payment:
        """Drive an approved refund onward from where the ledger has it (idempotent)."""
        payment = self._ledger.get(msgid)
        assert payment is not None, f"no payment {msgid}"
        if payment.state == WITHDRAWING:
            # Money went through the gateway only when the saga reached paid.
            money_back = "paid" in payment.phases and bool(payment.fen)
            payment = self._ledger.withdraw(msgid, self._clock.now(), self._revert, actor, money_back)
        if payment.state != REFUND_DUE:
            return payment
        if self._gateway is None:
            log.error("refund %s: no payment gateway configured; it stays due", payment.out_refund_no)
            return payment
        fen = payment.fen or 0
        try:
            # Idempotent on out_refund_no: asking again after a crash or a refusal is the same refund.
            result = self._gateway.refund(payment.out_trade_no, payment.out_refund_no, fen, fen)
        except RefundError as exc:
            # The same refusal again is counted in the row, not recorded again (store/payments.py).
            attempts = payment.attempts + 1
            payment = self._ledger.advance(
                msgid, REFUND_DUE, f"refund_failed:{exc.code}", self._clock.now(), actor,
                attempts=attempts, last_error=str(exc)[:300],
            )  # fmt: skip
            if attempts < self._refund_attempts:
                log.warning(
                    "refund %s refused (%s); it stays due and is tried again", payment.out_refund_no, exc
                )
                return payment
            log.error(
                "refund %s refused %d times (%s): %d fen to be refunded by hand",
                payment.out_refund_no, attempts, exc, fen,
            )  # fmt: skip
            # The insurance part is undone already: only the money is left, for staff to hand back.
            return self._ledger.advance(msgid, REFUND_MANUAL, REFUND_MANUAL, self._clock.now(), actor)
        except (PaymentUnavailableError, PaymentUnknownOutcomeError) as exc:
            log.warning("refund %s not confirmed (%s); tried again later", payment.out_refund_no, exc)
            return self._ledger.advance(
                msgid, REFUND_DUE, f"refund_unknown:{exc.code}", self._clock.now(), actor,
                last_error=str(exc)[:300],
            )  # fmt: skip
        if result.state != "SUCCESS":
            return self._ledger.advance(msgid, REFUND_DUE, f"refund:{result.state}", self._clock.now(), actor)
        return self._ledger.advance(msgid, REFUNDED, "refunded", self._clock.now(), actor)
