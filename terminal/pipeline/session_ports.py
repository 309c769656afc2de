"""What the checkout session needs beyond terminal/ports.py: liveness, checkout, ledger and journal."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from terminal.domain import Bill, Frame, Match, SettlementRecord
from terminal.pipeline.checkout import Priced
from terminal.pipeline.liveness import AttemptRecord, LivenessOutcome
from terminal.vision.liveness.sources import SensorFrame


class LivenessPort(Protocol):
    """One face attempt's liveness check: captures in, status and next prompt out; scores stay inside."""

    def feed(self, sensors: SensorFrame) -> LivenessOutcome:
        """Take the next capture; `pass`, `continue`, `retry` or `exhausted` with the next prompt."""
        ...

    def identity_frames(self) -> tuple[Frame, ...]:
        """Frames of the passed attempt to identify on (IdentityError before a pass)."""
        ...

    def diagnostics(self) -> tuple[AttemptRecord, ...]:
        """Per-attempt scores and reasons, for technicians only."""
        ...


# A fresh liveness check per face attempt; None means face is not offered at all (fail closed).
LivenessFactory = Callable[[], LivenessPort]


class CheckoutPort(Protocol):
    """Prices and settles bills."""

    def price(self, bill: Bill, psn_no: str) -> Priced:
        """A pre-settlement; nothing recorded."""
        ...

    def settle(self, priced: Priced, match: Match) -> SettlementRecord:
        """Record the settlement durably."""
        ...

    def benefit_hints(self, psn_no: str) -> list[dict[str, Any]]:
        """政策找人 hints for an identified person ([] unless they opted in)."""
        ...


class SettledCheck(Protocol):
    """The part of the ledger recovery needs."""

    def is_settled(self, chrg_bchno: str) -> bool:
        """Whether this bill already has a recorded settlement."""
        ...

    def settlement_of(self, chrg_bchno: str) -> Mapping[str, Any] | None:
        """The recorded settlement of a bill (msgid, setl_time and amounts), None when there is none."""
        ...


class JournalPort(Protocol):
    """The session journal (terminal/store/sessions.py): plain rows in and out."""

    def save(self, session: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        """Upsert the session row and append its transition, in one transaction."""
        ...

    def unfinished(self) -> Mapping[str, Any] | None:
        """The most recent session not back at idle, if any."""
        ...

    def events(self, session_id: str) -> list[dict[str, Any]]:
        """Every transition of one session, oldest first."""
        ...
