"""Test-only phase hooks for the crash test's child: die by SIGKILL at a named phase, the n-th time.

The child process (tests/integration/crash_child.py) installs these by monkeypatching the product in its
own process; nothing in the product knows about them. The phase and the occurrence come from the
environment, so the parent decides where each child dies:

- ``in_ledger_txn``: inside the settlement transaction (settlement and outbox rows written, the audit
  record not yet, nothing committed);
- ``after_commit``: a settlement committed, before the drain that would deliver it;
- ``after_upstream_commit``: the upstream committed an entry and answered, before the local delivered mark.

Before dying the hook writes ``phase <name> <detail>`` on the report stream, so the parent can assert
that the phase was hit and check the state it left behind.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any, TextIO

PHASE_ENV = "MEDPAY_CRASH_PHASE"
AT_ENV = "MEDPAY_CRASH_AT"
IN_LEDGER_TXN = "in_ledger_txn"
AFTER_COMMIT = "after_commit"
AFTER_UPSTREAM_COMMIT = "after_upstream_commit"
PHASES = (IN_LEDGER_TXN, AFTER_COMMIT, AFTER_UPSTREAM_COMMIT)


class PhaseHooks:
    """Counts hits of the chosen phase and SIGKILLs this process at the chosen one."""

    def __init__(self, phase: str, at: int, report: TextIO) -> None:
        if phase and phase not in PHASES:
            raise ValueError(f"unknown crash phase {phase!r}; one of {PHASES}")
        self.phase = phase
        self.at = at
        self.hits = 0
        self._report = report

    def hit(self, phase: str, detail: str) -> None:
        """Called at each phase point; dies here when this is the chosen phase's chosen occurrence."""
        if phase != self.phase:
            return
        self.hits += 1
        if self.hits == self.at:
            self._report.write(f"phase {phase} {detail}\n")
            self._report.flush()
            os.kill(os.getpid(), signal.SIGKILL)


def install(report: TextIO) -> PhaseHooks:
    """Read the phase from the environment and patch the product's phase points in this process."""
    from terminal.store import audit
    from terminal.store.outbox import OutboxStore

    hooks = PhaseHooks(os.environ.get(PHASE_ENV, ""), int(os.environ.get(AT_ENV, "0")), report)
    if not hooks.phase:
        return hooks

    append: Callable[..., str] = audit.append

    def append_then_maybe_die(db: Any, at: Any, actor: str, action: str, subject: str, detail: Any) -> str:
        # The ledger writes its audit record last inside the settlement transaction.
        if action == "settle":
            hooks.hit(IN_LEDGER_TXN, str(detail["chrg_bchno"]))
        return append(db, at, actor, action, subject, detail)

    deliver = OutboxStore.deliver

    def deliver_after_maybe_dying(self: OutboxStore, entry: Any, *args: Any, **kwargs: Any) -> Any:
        # The sync worker calls deliver only with the upstream's committed answer in hand.
        hooks.hit(AFTER_UPSTREAM_COMMIT, str(entry.msgid))
        return deliver(self, entry, *args, **kwargs)

    audit.append = append_then_maybe_die  # type: ignore[assignment]
    OutboxStore.deliver = deliver_after_maybe_dying  # type: ignore[method-assign]
    return hooks
