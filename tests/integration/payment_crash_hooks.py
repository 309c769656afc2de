"""Test-only phase hooks for the payment crash test's child: SIGKILL at a named saga phase.

Installed by monkeypatching the product in the child's own process (nothing in the product knows of
them), like tests/integration/crash_hooks.py. Phases:

- ``settled``: the settlement (and its saga row) committed, nothing else done;
- ``committed:<state>:<phase>``: a saga step committed in the ledger, before the gateway call after it;
- ``gateway:<call>``: the gateway did a call (its state saved), before the terminal heard the answer
  (the fake gateway's method, or the HTTP adapter's once the reference gateway's answer has arrived:
  either way before the saga records anything of it);
- ``in_reversal_txn``: inside the reversal's transaction (2207 voided or 2208 queued, totals restored,
  nothing committed).

The hook writes ``phase <name> <detail>`` on the report stream before dying.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any, TextIO

PHASE_ENV = "MEDPAY_PAY_CRASH_PHASE"


class PayHooks:
    """Dies at the first hit of the chosen phase."""

    def __init__(self, phase: str, report: TextIO) -> None:
        self.phase = phase
        self._report = report

    def hit(self, phase: str, detail: str) -> None:
        """Called at each phase point."""
        if phase == self.phase:
            self._report.write(f"phase {phase} {detail}\n")
            self._report.flush()
            os.kill(os.getpid(), signal.SIGKILL)


def install(report: TextIO) -> PayHooks:
    """Patch the ledger, the saga's store, the fake gateway and the HTTP adapter in this process."""
    from terminal.payment.http import HttpPaymentGateway
    from terminal.store import audit
    from terminal.store.ledger import SqliteLedger
    from terminal.store.payments import PaymentStore
    from tests.fake_gateway import FakeGateway

    hooks = PayHooks(os.environ.get(PHASE_ENV, ""), report)
    if not hooks.phase:
        return hooks

    record = SqliteLedger.record

    def record_then_maybe_die(self: SqliteLedger, rec: Any) -> None:
        record(self, rec)
        hooks.hit("settled", rec.msgid)

    advance = PaymentStore.advance

    def advance_then_maybe_die(
        self: PaymentStore, msgid: str, state: str, phase: str, *a: Any, **k: Any
    ) -> Any:
        done = advance(self, msgid, state, phase, *a, **k)
        hooks.hit(f"committed:{state}:{phase}", msgid)
        return done

    append: Callable[..., str] = audit.append

    def append_then_maybe_die(db: Any, at: Any, actor: str, action: str, subject: str, detail: Any) -> str:
        digest = append(db, at, actor, action, subject, detail)
        if action == "payment_reversed":  # the reversal's last write, inside its transaction
            hooks.hit("in_reversal_txn", subject)
        return digest

    def after_gateway(cls: type, name: str) -> None:
        original = getattr(cls, name)

        def call_then_maybe_die(self: Any, *a: Any, **k: Any) -> Any:
            try:
                return original(self, *a, **k)
            finally:
                hooks.hit(f"gateway:{name}", name)

        setattr(cls, name, call_then_maybe_die)

    for cls in (FakeGateway, HttpPaymentGateway):
        for name in ("create_qr", "micropay", "cancel", "refund"):
            after_gateway(cls, name)
    SqliteLedger.record = record_then_maybe_die  # type: ignore[method-assign]
    PaymentStore.advance = advance_then_maybe_die  # type: ignore[method-assign]
    audit.append = append_then_maybe_die  # type: ignore[assignment]
    return hooks
