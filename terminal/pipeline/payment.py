"""The payment saga: the patient's cash share collected after the insurance settlement, or both undone.

settled → due (amount fixed: the centre's binding psn_cash_pay online, the estimate offline) → charging
(a QR shown, or a scanned payment code charged; outcomes learnt by query) → paid. Anything else ends
reversed: the gateway order closed or reversed (撤销) first, refunded when it had been paid, and only then
the insurance part undone (store/payments.py: the queued 2207 voided, or a 2208 queued) with the
year-to-date totals restored, in one transaction. An outcome the terminal does not know (timeout,
SYSTEMERROR) is never taken for a failure: the order is asked about until it is known. Every step is
durable before the gateway is called, so recovery (start-up, tick) drives each saga to one of its two
ends: never money without a settlement, never a settlement without the money.

A settlement the centre refuses (or a technician voids) after the patient paid is refunded the same way
(store/payment_refusals.py moves it to refunding); whether a paid order completes or is refunded is
decided in the transaction that records it (PaymentLedger.complete_paid), and a charging one whose 2207
is refused or voided is abandoned. Every move into refunding starts the refund's own count: a refund the
gateway refuses `refund_attempts` times ends refund_manual: the insurance part undone, the money left for
staff to hand back (the day report lists it until they record it, refunded_by_hand). A retry that meets
the same answer again is counted in the row, not recorded again. An order found refunded (REFUND) while
charging or abandoning was refunded outside the terminal: only the insurance part is undone, no refund.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from terminal.errors import (
    PaymentDeclinedError,
    PaymentUnavailableError,
    PaymentUnknownOutcomeError,
    RefundError,
    SessionStateError,
    TerminalError,
)
from terminal.payment.codes import route_auth_code
from terminal.payment_types import (
    PayChannel,
    Payment,
    PayOrder,
    PayOutcome,
    PayState,
    fen_of,
    out_refund_no_for,
)
from terminal.pipeline.payment_ports import CentreLink, PaymentLedger
from terminal.pipeline.refunds import (
    REFUND_ATTEMPTS,
    REFUND_DUE,
    REFUNDED,
    WITHDRAWING,
    CounterRefunds,
)
from terminal.ports import Clock, PaymentGateway, Revert

log = logging.getLogger(__name__)

SETTLED = "settled"  # the insurance settlement is recorded; the amount to collect not yet fixed
DUE = "due"  # the amount is fixed; no order has been sent
CHARGING = "charging"  # an order may exist at the gateway (QR shown, code charged, outcome pending)
ABANDONING = "abandoning"  # given up: the order is being closed / reversed at the gateway
REFUNDING = "refunding"  # given up after the patient paid: the payment is being refunded
PAID = "paid"  # both parts done
REVERSED = "reversed"  # nothing kept: the money returned (or never taken), the insurance part undone
REFUND_MANUAL = "refund_manual"  # insurance undone; the gateway refused the refund for good: staff pay back
REFUNDED_BY_HAND = "refunded_by_hand"  # staff recorded handing the refund_manual money back
NO_CASH = "no_cash"  # psn_cash_pay 0: nothing to collect
EXTERNAL = "external"  # no gateway configured: the cash share is collected at the counter, outside
ENDS = frozenset({PAID, REVERSED, NO_CASH, EXTERNAL, REFUNDED, REFUND_MANUAL, REFUNDED_BY_HAND})
DONE = frozenset({PAID, NO_CASH, EXTERNAL})

# Gateway states in which the order holds no money of the patient.
EMPTY = frozenset({PayState.CLOSED, PayState.REVOKED, PayState.PAYERROR, PayState.NOTFOUND})
UNREACHABLE = "gateway unreachable"
# The 2207's outbox states in which the centre will never have the settlement.
NEVER_SETTLED = frozenset({"refused", "voided"})
CENTRE_REFUSED = "centre_refused"
REFUNDED_OUTSIDE = "refunded_outside"  # the phase: an order found refunded that the terminal never refunded


def wallet_of(auth_code: str) -> PayChannel:
    """The wallet a scanned payment code belongs to; PaymentCodeInvalidError otherwise (one rule, §5)."""
    return route_auth_code(auth_code)


@dataclass(frozen=True)
class PayPolicy:
    """How long the terminal waits for a patient's payment, and what it says when it cannot take one."""

    qr_expires_s: int = 120
    code_polls: int = 10  # queries of a payment code awaiting the patient's password before giving up
    create_attempts: int = 3  # QR creates sent (idempotent) while no answer brought the code to show
    refund_attempts: int = (
        REFUND_ATTEMPTS  # refunds the gateway refuses before staff are asked to pay back by hand
    )
    # True: when the gateway is unreachable the patient is sent to the staffed window ("请到人工窗口缴费
    # ¥X"); either way the settlement is reversed and nothing was charged here.
    counter_fallback: bool = False
    subject: str = "医保结算 个人现金部分"
    poll_s: float = 2.0  # how often the pages ask where a payment stands


class PaymentSaga:
    """Drives one settlement's payment to paid or reversed; every step is in the ledger before the call."""

    def __init__(
        self,
        ledger: PaymentLedger,
        gateway: PaymentGateway | None,
        clock: Clock,
        revert: Revert,
        policy: PayPolicy | None = None,
        centre: CentreLink | None = None,
    ) -> None:
        self._ledger = ledger
        self._gateway = gateway
        self._clock = clock
        self._revert = revert
        self.policy = policy or PayPolicy()
        self._centre = centre

    @property
    def collects(self) -> bool:
        """Whether this terminal collects the cash share itself (a gateway is configured)."""
        return self._gateway is not None

    def get(self, msgid: str) -> Payment:
        """One settlement's saga (SessionStateError when it has none)."""
        found = self._ledger.get(msgid)
        if found is None:
            raise SessionStateError(f"settlement {msgid} has no payment")
        return found

    # ---- the amount --------------------------------------------------------------------------------

    def decide(self, msgid: str) -> Payment:
        """Fix what the patient pays: the centre's binding psn_cash_pay when it can be had now."""
        payment = self.get(msgid)
        if payment.state == DUE and self._ledger.binding(msgid)[0] in NEVER_SETTLED:
            # Refused at sync (or voided) between fixing the amount and charging: nothing to collect.
            return self._reverse(payment, "refused", "the centre refused the settlement")
        if payment.state != SETTLED:
            return payment
        now = self._clock.now()
        if self._gateway is None:
            return self._ledger.advance(
                msgid, EXTERNAL, "external", now, fen=payment.estimate_fen, basis="local"
            )
        if self._centre is not None:
            try:
                self._centre.deliver_through(msgid)
            except TerminalError as exc:
                log.warning("binding result of %s not fetched: %s", msgid, exc)
        outbox_state, output = self._ledger.binding(msgid)
        if outbox_state in NEVER_SETTLED:
            # Voided is as final as refused: the centre never settles it, so nothing may be charged.
            return self._reverse(
                payment, "refused", f"the centre will not have the settlement: {outbox_state}"
            )
        fen, basis = payment.estimate_fen, "local" if self._centre is None else "estimate"
        if output is not None:
            try:
                fen, basis = fen_of(Decimal(str(output["setlinfo"]["psn_cash_pay"]))), "binding"
            except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
                log.error(
                    "binding result of %s has no readable psn_cash_pay (%s): charging the estimate",
                    msgid,
                    exc,
                )
        state = NO_CASH if fen == 0 else DUE
        return self._ledger.advance(msgid, state, "amount", self._clock.now(), fen=fen, basis=basis)

    # ---- charging ----------------------------------------------------------------------------------

    def start_qr(self, msgid: str) -> Payment:
        """主扫: create (or show again) the order's QR for the patient to scan."""
        payment = self.decide(msgid)
        if payment.state == CHARGING and payment.channel == "qr":
            return payment if payment.code_url and not self._never_settled(msgid) else self.poll(msgid)
        self._require(payment, DUE)
        self._gateway_or_fail()
        # The QR's time runs from the moment the create is sent: an answer lost on the way cannot
        # leave an order without an end.
        sent = self._clock.now()
        expires = sent + timedelta(seconds=self.policy.qr_expires_s)
        payment = self._ledger.advance(
            msgid, CHARGING, "order_sent", sent, channel="qr", expires_at=expires, attempts=1
        )
        return self._create(payment)

    def pay_code(self, msgid: str, auth_code: str, actor: str = "terminal") -> Payment:
        """被扫: charge the patient's scanned payment code; USERPAYING is then polled (bounded)."""
        wallet = wallet_of(auth_code)
        payment = self.decide(msgid)
        self._require(payment, DUE)
        gateway = self._gateway_or_fail()
        payment = self._ledger.advance(
            msgid, CHARGING, "order_sent", self._clock.now(), actor, channel="code", wallet=wallet.value
        )
        try:
            outcome = gateway.micropay(self._order(payment), auth_code.strip())
        except PaymentUnavailableError as exc:
            return self._reverse(payment, "unreachable", f"{UNREACHABLE}: {exc}")
        except PaymentUnknownOutcomeError as exc:
            log.warning("payment code %s: outcome unknown (%s); asking", payment.out_trade_no, exc)
            return self.poll(msgid)
        except PaymentDeclinedError as exc:
            return self.abandon(msgid, f"declined: {exc}")
        return self._heard(payment, outcome)

    def poll(self, msgid: str) -> Payment:
        """Ask the gateway where a charging order stands; give up past the QR's expiry or the poll bound."""
        payment = self.get(msgid)
        if payment.state in (ABANDONING, REFUNDING):
            return self.resume(msgid, startup=False)
        if payment.state != CHARGING:
            return payment
        gateway = self._gateway_or_fail()
        unanswered = payment.channel == "qr" and not payment.code_url
        if unanswered and payment.attempts < self.policy.create_attempts and not self._never_settled(msgid):
            return self._create_again(payment)
        try:
            outcome = gateway.query(payment.out_trade_no)
        except (PaymentUnavailableError, PaymentUnknownOutcomeError) as exc:
            log.warning("query of %s failed: %s", payment.out_trade_no, exc)
            return self._waited(payment)
        return self._heard(payment, outcome)

    def abandon(self, msgid: str, reason: str, actor: str = "terminal") -> Payment:
        """Give up (patient cancelled, walked away, declined, timed out): close the order, then reverse."""
        payment = self.get(msgid)
        if payment.state in ENDS or payment.state in (ABANDONING, REFUNDING):
            return payment if payment.state in ENDS else self.resume(msgid, startup=False)
        if payment.state in (SETTLED, DUE):
            # No order was ever sent: nothing at the gateway to close.
            return self._reverse(payment, "abandoned", reason, actor)
        payment = self._ledger.advance(msgid, ABANDONING, "abandon", self._clock.now(), actor, reason=reason)
        return self._close(payment, actor)

    # ---- recovery ----------------------------------------------------------------------------------

    def recover(self, skip: Iterable[str] = ()) -> list[Payment]:
        """Resume every unfinished saga but those in `skip` (the live session's); returns where each ended."""
        skipped = set(skip)
        ended = []
        for payment in self._ledger.unfinished():
            if payment.msgid in skipped:
                continue
            try:
                ended.append(self.resume(payment.msgid, startup=True))
            except TerminalError as exc:
                log.error("payment %s not resumed (%s); the next tick tries again", payment.msgid, exc)
        return ended

    def resume(self, msgid: str, startup: bool) -> Payment:
        """One saga onward from where the ledger has it; at start-up nobody waits at the kiosk for it."""
        payment = self.get(msgid)
        if payment.state in (SETTLED, DUE):
            if startup:
                return self._reverse(payment, "recovered", "the checkout was interrupted before payment")
            return payment
        if payment.state == CHARGING:
            try:
                outcome = self._gateway_or_fail().query(payment.out_trade_no)
            except (PaymentUnavailableError, PaymentUnknownOutcomeError) as exc:
                log.warning("recovery query of %s failed: %s", payment.out_trade_no, exc)
                return payment
            if outcome.state is PayState.SUCCESS:
                # Paid after the terminal stopped listening: the checkout completes.
                return self._paid(payment, outcome)
            if outcome.state is PayState.REFUND:
                return self._refunded_outside(payment)
            if startup or outcome.state in EMPTY or self._never_settled(msgid):
                return self.abandon(msgid, f"recovered with the order {outcome.state.value}")
            return payment
        if payment.state == ABANDONING:
            return self._close(payment)
        if payment.state == REFUNDING:
            return self._refund(payment)
        if payment.state in (WITHDRAWING, REFUND_DUE):
            # A counter refund (pipeline/refunds.py) interrupted or refused at the gateway: finish it.
            return self.refunds().finish(msgid)
        return payment

    def refunds(self) -> CounterRefunds:
        """Counter refunds (退费) over this saga's ledger and gateway."""
        return CounterRefunds(
            self._ledger, self._gateway, self._clock, self._revert, self.policy.refund_attempts
        )

    # ---- steps -------------------------------------------------------------------------------------

    def _heard(self, payment: Payment, outcome: PayOutcome) -> Payment:
        if outcome.state is PayState.SUCCESS:
            return self._paid(payment, outcome)
        if outcome.state in EMPTY:
            reason = f"the order is {outcome.state.value}" + (
                f" ({outcome.err_code})" if outcome.err_code else ""
            )
            if outcome.state in (PayState.NOTFOUND, PayState.PAYERROR):
                # Not (yet) known or failed is not closed: a request still in flight could charge later.
                # Abandoning cancels the order number first (the gateway then refuses any late charge).
                return self.abandon(payment.msgid, reason)
            return self._reverse(payment, "order_empty", reason)
        if outcome.state is PayState.REFUND:
            return self._refunded_outside(payment)
        if payment.channel == "qr" and outcome.code_url and not payment.code_url:
            if self._never_settled(payment.msgid):
                return self.abandon(payment.msgid, "the centre will not have the settlement")
            # The create's answer was lost but the order exists: show its QR, within the first expiry.
            return self._shown(payment, outcome)
        return self._waited(payment, outcome.state.value)

    def _waited(self, payment: Payment, seen: str = "unknown") -> Payment:
        if self._never_settled(payment.msgid):
            # Refused (or voided) while the QR is shown or the code waits: it must not stay payable. Only
            # now: an order the patient already paid was asked about first and is refunded as such.
            return self.abandon(payment.msgid, "the centre will not have the settlement")
        now = self._clock.now()
        polls = payment.polls + 1
        if payment.channel == "code" and polls >= self.policy.code_polls:
            return self.abandon(payment.msgid, f"no answer after {polls} queries ({seen})")
        if payment.channel == "qr" and payment.expires_at is not None and now >= payment.expires_at:
            return self.abandon(payment.msgid, "the QR code expired unpaid")
        return self._ledger.advance(payment.msgid, CHARGING, f"poll:{seen}", now, polls=polls)

    def _create(self, payment: Payment) -> Payment:
        """Send the QR order's create (durable as sent already); a retry is the same order."""
        try:
            outcome = self._gateway_or_fail().create_qr(self._order(payment), self.policy.qr_expires_s)
        except PaymentUnavailableError as exc:
            if payment.attempts <= 1:
                # Nothing ever reached the gateway: no order exists, the settlement is undone now.
                return self._reverse(payment, "unreachable", f"{UNREACHABLE}: {exc}")
            # An earlier create may have arrived: only its expiry (then closing it) ends this one.
            return self._waited(payment, "create_unreachable")
        except PaymentUnknownOutcomeError as exc:
            log.warning("QR order %s: create outcome unknown (%s)", payment.out_trade_no, exc)
            return payment if payment.attempts <= 1 else self._waited(payment, "create_unknown")
        except PaymentDeclinedError as exc:
            return self.abandon(payment.msgid, f"declined: {exc}")
        if outcome.state in (PayState.NOTPAY, PayState.USERPAYING):
            return self._shown(payment, outcome)
        return self._heard(payment, outcome)

    def _create_again(self, payment: Payment) -> Payment:
        """The create's answer never came (bounded retries, idempotent on out_trade_no), until expiry."""
        now = self._clock.now()
        if payment.expires_at is not None and now >= payment.expires_at:
            return self.abandon(payment.msgid, "the QR code expired before the gateway answered")
        payment = self._ledger.advance(
            payment.msgid, CHARGING, "order_resent", now, attempts=payment.attempts + 1
        )
        return self._create(payment)

    def _shown(self, payment: Payment, outcome: PayOutcome) -> Payment:
        # The earlier of the two ends: the terminal's own (from the first send) or the gateway's.
        ends = [at for at in (payment.expires_at, outcome.expires_at) if at is not None]
        return self._ledger.advance(
            payment.msgid, CHARGING, "qr_shown", self._clock.now(),
            code_url=outcome.code_url or "", expires_at=min(ends) if ends else None,
        )  # fmt: skip

    def _paid(self, payment: Payment, outcome: PayOutcome) -> Payment:
        if outcome.total_fen != payment.fen:
            log.error(
                "order %s paid %d fen, %s were due", payment.out_trade_no, outcome.total_fen, payment.fen
            )
            return self.abandon(payment.msgid, f"paid {outcome.total_fen} fen, {payment.fen} were due")
        fields = {
            "wallet": outcome.channel.value if outcome.channel else payment.wallet,
            "transaction_id": outcome.transaction_id or "",
        }
        # Paid, or refunding when the 2207 was refused or voided: checked where it is written, so a
        # refusal or a void by another process cannot fall between the check and the write.
        ended = self._ledger.complete_paid(payment.msgid, self._clock.now(), **fields)
        if ended.state == REFUNDING:
            log.warning("order %s paid for a settlement the centre refused: refunding", payment.out_trade_no)
            return self._refund(ended)
        return ended

    def _close(self, payment: Payment, actor: str = "terminal") -> Payment:
        try:
            outcome = self._gateway_or_fail().cancel(payment.out_trade_no)
        except (PaymentUnavailableError, PaymentUnknownOutcomeError) as exc:
            log.warning("closing %s failed (%s); recovery tries again", payment.out_trade_no, exc)
            return payment
        if outcome.state in EMPTY:
            return self._reverse(payment, "order_closed", payment.reason or "abandoned", actor)
        if outcome.state is PayState.REFUND:
            return self._refunded_outside(payment, actor)
        # The gateway kept a paid order: the money goes back by refund before the insurance part is undone.
        refund_no = out_refund_no_for(payment.out_trade_no)
        payment = self._ledger.advance(
            payment.msgid, REFUNDING, "refund_sent", self._clock.now(), actor, out_refund_no=refund_no,
            attempts=0, last_error="",  # the refund's own count, not the QR creates'
        )  # fmt: skip
        return self._refund(payment, actor)

    def _refunded_outside(self, payment: Payment, actor: str = "terminal") -> Payment:
        """The order was paid and refunded outside the terminal (the merchant platform): the money is back
        already, so only the insurance part is undone; refunding again would be refused, then paid twice."""
        log.warning("order %s was refunded outside the terminal", payment.out_trade_no)
        return self._reverse(payment, REFUNDED_OUTSIDE, "refunded outside the terminal", actor)

    def _refund(self, payment: Payment, actor: str = "terminal") -> Payment:
        gateway = self._gateway_or_fail()
        fen = payment.fen or 0
        now = self._clock.now()
        try:
            # Idempotent on out_refund_no: asking again after a crash or a lost answer is the same refund.
            result = gateway.refund(payment.out_trade_no, payment.out_refund_no, fen, fen)
        except RefundError as exc:
            return self._refund_refused(payment, f"{exc.code}: {exc}", actor)
        except (PaymentUnavailableError, PaymentUnknownOutcomeError) as exc:
            # It may have gone through: never counted as refused, asked again under the same number.
            log.warning("refund %s not confirmed (%s); recovery tries again", payment.out_refund_no, exc)
            return self._ledger.advance(
                payment.msgid, REFUNDING, f"refund_unknown:{exc.code}", now, actor, last_error=str(exc)[:300]
            )
        if result.state == "FAIL":
            return self._refund_refused(payment, "REFUND_FAILED: the gateway answered FAIL", actor)
        if result.state != "SUCCESS":
            log.warning("refund %s is %s; recovery asks again", payment.out_refund_no, result.state)
            return self._ledger.advance(payment.msgid, REFUNDING, f"refund:{result.state}", now, actor)
        return self._reverse(payment, "refunded", payment.reason or "refunded", actor)

    def _refund_refused(self, payment: Payment, error: str, actor: str) -> Payment:
        """The gateway said no: counted; past the bound, staff hand the money back (listed, audited)."""
        attempts = payment.attempts + 1
        code = error.split(":", 1)[0]
        payment = self._ledger.advance(
            payment.msgid, REFUNDING, f"refund_failed:{code}", self._clock.now(), actor,
            attempts=attempts, last_error=error[:300],
        )  # fmt: skip
        if attempts < self.policy.refund_attempts:
            log.warning("refund %s refused (%s); tried again", payment.out_refund_no, error)
            return payment
        log.error(
            "refund %s refused %d times (%s): %d fen to be refunded by hand",
            payment.out_refund_no, attempts, error, payment.fen or 0,
        )  # fmt: skip
        return self._ledger.reverse(
            payment.msgid, REFUND_MANUAL, payment.reason or error, self._clock.now(), self._revert, actor,
            end=REFUND_MANUAL,
        )  # fmt: skip

    def _reverse(self, payment: Payment, phase: str, reason: str, actor: str = "terminal") -> Payment:
        ended = self._ledger.reverse(payment.msgid, phase, reason, self._clock.now(), self._revert, actor)
        log.info("payment %s reversed (%s): %s", payment.msgid, ended.reversal, reason)
        return ended

    def _order(self, payment: Payment) -> PayOrder:
        assert payment.fen is not None
        return PayOrder(payment.out_trade_no, payment.fen, self.policy.subject)

    def _gateway_or_fail(self) -> PaymentGateway:
        if self._gateway is None:
            raise PaymentUnavailableError("no payment gateway is configured on this terminal")
        return self._gateway

    def _never_settled(self, msgid: str) -> bool:
        return self._ledger.binding(msgid)[0] in NEVER_SETTLED

    @staticmethod
    def _require(payment: Payment, state: str) -> None:
        if payment.state != state:
            raise SessionStateError(f"the payment is {payment.state}; this needs {state}")
