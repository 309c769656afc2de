"""Parked outbox entries for technicians: what is parked and why, re-queue one, void one (audited)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from terminal.errors import OutboxEntryError
from terminal.pipeline.sync import reverted_accumulators
from terminal.store.outbox_parked import ParkedEntries
from terminal.uplink.wire import envelope_problem

if TYPE_CHECKING:
    from terminal.app.terminal import Terminal


def parked_view(terminal: Terminal) -> dict[str, Any]:
    """Parked entries (oldest first) with the counts beside them; the caller holds the terminal's lock."""
    facts = terminal.outbox.uplink_facts()
    return {
        "parked": ParkedEntries(terminal.db).entries(),
        "counts": terminal.outbox.counts(),
        "deliverable": facts.queued,
        "down_since": facts.down_since.isoformat() if facts.down_since else None,
    }


def requeue_parked(terminal: Terminal, msgid: str, operator: str) -> None:
    """Put one parked entry back in line; refused while its envelope still breaks the wire contract."""
    with terminal.lock:
        parked = ParkedEntries(terminal.db)
        problem = envelope_problem(parked.envelope(msgid))
        if problem:
            raise OutboxEntryError(
                f"{msgid} still breaks the wire contract ({problem}); re-queued it would only be parked"
                " again: void it (medpay outbox void MSGID --reason …)"
            )
        parked.requeue(msgid, operator, terminal.clock.now())


def void_parked(terminal: Terminal, msgid: str, reason: str, operator: str) -> bool:
    """Never send one parked entry; its settlement leaves the accumulators. True when it was a settlement."""
    with terminal.lock:
        return ParkedEntries(terminal.db).void(
            msgid, reason, operator, terminal.clock.now(), reverted_accumulators
        )
