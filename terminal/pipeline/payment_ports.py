"""What the payment saga needs besides the gateway (terminal/ports.py): its ledger rows and the centre."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from terminal.payment_types import Payment
from terminal.ports import Revert


class PaymentLedger(Protocol):
    """The saga's durable rows and the insurance reversal (terminal/store/payments.py)."""

    def get(self, msgid: str) -> Payment | None:
        """One settlement's saga."""
        ...

    def unfinished(self) -> list[Payment]:
        """Every saga not at one of its ends, oldest first."""
        ...

    def advance(
        self, msgid: str, state: str, phase: str, at: datetime, actor: str = "terminal", **fields: Any
    ) -> Payment:
        """Move a saga to `state` with its phase, fields and audit record, in one transaction."""
        ...

    def complete_paid(self, msgid: str, at: datetime, actor: str = "terminal", **fields: Any) -> Payment:
        """Paid, or refunding when the 2207 was refused or voided: decided and written in one transaction."""
        ...

    def binding(self, msgid: str) -> tuple[str, Mapping[str, Any] | None]:
        """The 2207's outbox state and the centre's binding output once delivered."""
        ...

    def reverse(
        self,
        msgid: str,
        phase: str,
        reason: str,
        at: datetime,
        revert: Revert,
        actor: str = "terminal",
        end: str = "reversed",
    ) -> Payment:
        """Void the queued 2207 or queue a 2208, restore the totals, end at `end`: one transaction."""
        ...

    def owed(self) -> list[Payment]:
        """Every saga still owing the patient money back (retried, or left to staff)."""
        ...

    def approve_refund(
        self, msgid: str, at: datetime, cashier: str, supervisor: str, reason: str, out_refund_no: str
    ) -> Payment:
        """Record an approved counter refund (refused out of order or when not completed)."""
        ...

    def withdraw(self, msgid: str, at: datetime, revert: Revert, actor: str, money_back: bool) -> Payment:
        """An approved refund's insurance part undone; then refund_due (money back) or refunded."""
        ...


class CentreLink(Protocol):
    """Delivers the outbox up to a settlement now, so its binding result is known before charging."""

    def deliver_through(self, msgid: str) -> None:
        """Try once to deliver the queue up to `msgid` (in order); failures only leave it pending."""
        ...
