"""The checkout session's states and its live record, and that record as the journal's plain rows."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from terminal.domain import MatchMethod
from terminal.pipeline.checkout import Priced
from terminal.pipeline.identify import FaceAttempts
from terminal.pipeline.session_ports import LivenessPort


class State(StrEnum):
    """Where the one session of this terminal stands."""

    IDLE = "idle"
    IDENTIFYING = "identifying"
    IDENTIFIED = "identified"
    PRICED = "priced"
    CONFIRMED = "confirmed"
    SETTLED = "settled"


@dataclass
class LiveSession:
    """The mutable state of the current session; only the Session touches it, under its lock."""

    session_id: str
    state: State
    started_at: datetime
    updated_at: datetime
    face_failures: int = 0
    psn_no: str | None = None
    method: MatchMethod | None = None
    bill: Mapping[str, Any] | None = None
    msgid: str | None = None
    last_result: str | None = None
    prompt: str = "welcome"
    priced: Priced | None = None
    record: Mapping[str, Any] | None = None
    attempts: FaceAttempts = field(default_factory=lambda: FaceAttempts(3))
    liveness: LivenessPort | None = None
    challenge: str | None = None

    def row(self) -> dict[str, Any]:
        """The journal's session row: what a restart needs to resume (no scores, no priced result)."""
        return {
            "session_id": self.session_id,
            "state": self.state.value,
            "started_at": self.started_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "face_failures": self.face_failures,
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
    def from_row(cls, row: Mapping[str, Any], max_face_attempts: int) -> LiveSession:
        """The session a journal row describes, with its failed face attempts counted again."""
        failures = int(row["face_failures"])
        return cls(
            session_id=row["session_id"],
            state=State(row["state"]),
            started_at=datetime.fromisoformat(row["started_at"]),
            updated_at=datetime.fromisoformat(row["updated_at"]),
            face_failures=failures,
            psn_no=row["psn_no"],
            method=row["method"],
            bill=row["bill"],
            msgid=row["msgid"],
            attempts=FaceAttempts(max_face_attempts, failed=failures),
        )

    @classmethod
    def fresh(cls, now: datetime, prompt: str, attempts: FaceAttempts) -> LiveSession:
        """A new idle session with a new id."""
        return cls(
            session_id=uuid.uuid4().hex[:16],
            state=State.IDLE,
            started_at=now,
            updated_at=now,
            prompt=prompt,
            attempts=attempts,
        )
