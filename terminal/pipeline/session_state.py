"""The checkout session's states and its live record, and that record as the journal's plain rows."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from terminal.domain import FaceObservation, MatchMethod
from terminal.pipeline.attempt_limits import CheckoutAttempts
from terminal.pipeline.checkout import Priced
from terminal.pipeline.session_ports import LivenessPort


class State(StrEnum):
    """Where the one session of this terminal stands."""

    IDLE = "idle"
    IDENTIFYING = "identifying"
    IDENTIFIED = "identified"
    PRICED = "priced"
    CONFIRMED = "confirmed"
    PAYING = "paying"  # the insurance part is recorded; the cash share is being collected
    SETTLED = "settled"


@dataclass
class LiveSession:
    """The mutable state of the current session; only the Session touches it, under its lock."""

    session_id: str
    state: State
    started_at: datetime
    updated_at: datetime
    psn_no: str | None = None
    method: MatchMethod | None = None
    bill: Mapping[str, Any] | None = None
    msgid: str | None = None
    last_result: str | None = None
    prompt: str = "welcome"
    priced: Priced | None = None
    record: Mapping[str, Any] | None = None
    attempts: CheckoutAttempts = field(default_factory=lambda: CheckoutAttempts(3, 5))
    liveness: LivenessPort | None = None
    challenge: str | None = None
    # The running challenge's movement n of steps and when its time runs out (the kiosk's countdown).
    challenge_step: tuple[int, int, datetime | None] | None = None
    # The patient tapped face: the capture loop feeds the camera until the attempt ends.
    face_wanted: bool = False
    # The open face attempt in the terminal-wide attempt journal (counts as failed until it passes).
    attempt_id: int | None = None
    # A typed ID number names whom a face 1:1 must verify: (psn_no or "" when nobody has it, shown form).
    verify: tuple[str, str] | None = None
    # The typed ID's open attempt in the terminal-wide journal (closed as passed when the face 1:1 passes).
    verify_attempt: int | None = None
    # A passed challenge's probe waiting for the ID number's last four (gallery above the 1:N cap); never
    # journalled: a restart asks for the face again.
    probe: FaceObservation | None = None
    # 政策找人 hints for the identified person (never journalled: shown once, logged when found).
    hints: tuple[Mapping[str, Any], ...] = ()

    def copy(self) -> LiveSession:
        """A snapshot to restore when a step fails before its journal write committed.

        Field values are replaced, never changed in place, except the attempt counters (copied here);
        the liveness checker is shared on purpose: it is the running attempt, not journalled state.
        """
        return replace(self, attempts=copy.copy(self.attempts))

    def row(self) -> dict[str, Any]:
        """The journal's session row: what a restart needs to resume (no scores, no priced result)."""
        return {
            "session_id": self.session_id,
            "state": self.state.value,
            "started_at": self.started_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "face_failures": self.attempts.face_used,
            "credential_attempts": self.attempts.credentials_used,
            "verify_claim": json.dumps(list(self.verify)) if self.verify else None,
            "psn_no": self.psn_no,
            "method": self.method,
            "bill": self.bill,
            "msgid": self.msgid,
        }

    def event(self, event: str, from_state: State | None, detail: str, at: datetime) -> dict[str, Any]:
        """The journal's row for the transition into the current state."""
        return {
            "at": at.isoformat(),
            "event": event,
            "from_state": from_state.value if from_state else None,
            "to_state": self.state.value,
            "detail": detail,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any], face_limit: int, credential_limit: int) -> LiveSession:
        """The session a journal row describes, with its face attempts and typed IDs counted again."""
        verify = json.loads(row["verify_claim"]) if row.get("verify_claim") else None
        attempts = CheckoutAttempts(
            face_limit, credential_limit, int(row["face_failures"]), int(row.get("credential_attempts") or 0)
        )
        return cls(
            session_id=row["session_id"],
            state=State(row["state"]),
            started_at=datetime.fromisoformat(row["started_at"]),
            updated_at=datetime.fromisoformat(row["updated_at"]),
            psn_no=row["psn_no"],
            method=row["method"],
            bill=row["bill"],
            msgid=row["msgid"],
            attempts=attempts,
            verify=(str(verify[0]), str(verify[1])) if verify else None,
        )

    @classmethod
    def fresh(cls, now: datetime, prompt: str, attempts: CheckoutAttempts) -> LiveSession:
        """A new idle session with a new id."""
        return cls(
            session_id=uuid.uuid4().hex[:16],
            state=State.IDLE,
            started_at=now,
            updated_at=now,
            prompt=prompt,
            attempts=attempts,
        )
