"""The counter's operations over the terminal: refunds (退费), refunds handed back by hand, and the day's
settlements for the page."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from terminal.app.terminal import Terminal
from terminal.errors import ApprovalRequiredError, CounterError, RefundRefusedError
from terminal.payment_types import Payment
from terminal.pipeline.refunds import CounterRefunds
from terminal.pipeline.sync import reverted_accumulators
from terminal.store.day_report import settlements_of_day
from terminal.store.hand_refunds import record_hand_refund
from terminal.store.payments import PaymentStore
from terminal.store.staff import StaffStore


def counter_refunds(terminal: Terminal) -> CounterRefunds:
    """Counter refunds over the terminal's ledger and gateway (the caller holds the terminal's lock)."""
    return CounterRefunds(
        PaymentStore(terminal.db), terminal.payment_gateway, terminal.clock, reverted_accumulators
    )


def refund_fen(payment: Payment) -> int:
    """What a refund of this payment hands back, in fen: what was charged (the estimate until decided)."""
    return payment.fen if payment.fen is not None else payment.estimate_fen


def refund_fen_of(terminal: Terminal, msgid: str) -> int:
    """The fen a refund of this settlement hands back; RefundRefusedError when it has no payment."""
    payment = PaymentStore(terminal.db).get(msgid)
    if payment is None:
        raise RefundRefusedError(f"no settlement {msgid} with a payment on this terminal")
    return refund_fen(payment)


def refunded_by_hand(
    terminal: Terminal, msgid: str, receipt_no: str, staff_id: str, operator: str = ""
) -> Payment:
    """Record that a supervisor handed a refund_manual settlement's money back (the caller holds the lock).

    The person must be an active supervisor (ApprovalRequiredError otherwise): money leaves the till on
    their word. RefundRefusedError unless the settlement is owed by hand. Without `operator` the
    supervisor signed in (the office page) and is the audit's actor. With it (the CLI, where nobody
    signs in) the operator is the actor and the supervisor only `named_supervisor` in the detail: the
    audit never claims a supervisor's act no password vouched for.
    """
    member = StaffStore(terminal.db).get(staff_id)
    if member is None or not member.active:
        raise CounterError(f"no active staff member {staff_id}")
    if member.role != "supervisor":
        raise ApprovalRequiredError(f"{staff_id} is a {member.role}; a supervisor records a refund by hand")
    now = terminal.clock.now()
    if operator:
        return record_hand_refund(terminal.db, msgid, receipt_no, now, operator, named_supervisor=staff_id)
    return record_hand_refund(terminal.db, msgid, receipt_no, now, f"staff:{staff_id}")


def counter_day(terminal: Terminal, day: date) -> list[dict[str, Any]]:
    """One day's settlements with their payment state, newest first (the caller holds the lock)."""
    iso = day.isoformat()
    payments = {p.msgid: p for p in PaymentStore(terminal.db).of_day(iso)}
    rows = []
    for s in settlements_of_day(terminal.db, iso):
        payment = payments.get(s["msgid"])
        rows.append(
            {
                "msgid": s["msgid"],
                "chrg_bchno": s["chrg_bchno"],
                "psn_no": s["psn_no"],
                "setl_time": s["setl_time"],
                "psn_cash_pay": str(Decimal(str(s["local"].get("psn_cash_pay", "0")))),
                "payment": payment.state if payment is not None else "",
                "wallet": payment.wallet if payment is not None else "",
                # What a refund hands back: the supervisor approves this very amount.
                "refund_amount": f"{Decimal(refund_fen(payment)) / 100:.2f}" if payment is not None else "",
                "reversed": s["reversed"],
            }
        )
    return rows[::-1]
