"""How many identification attempts a checkout and the whole terminal get.

An attempt counts from the moment it starts: cancelling, timing out, losing the face or starting again
is a failure, so a presentation attack cannot redraw the liveness challenge for free. Per checkout,
face and typed ID numbers each have a limit; terminal-wide, failures of any kind in a sliding window
pause face for everyone (QR code and card stay offered) until the pause runs out or a technician
lifts it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from terminal.errors import AttemptsExhaustedError, CredentialAttemptsError, FacePausedError
from terminal.ports import Clock

log = logging.getLogger(__name__)

Kind = Literal["face", "credential"]


class AttemptsPort(Protocol):
    """The attempt journal (terminal/store/attempts.py)."""

    def begin(self, session_id: str, kind: Kind, at: datetime) -> int:
        """An attempt that counts as failed until it ends; its id."""
        ...

    def end(self, attempt_id: int, outcome: Literal["pass", "fail"], detail: str) -> None:
        """Close an open attempt."""
        ...

    def failed(self, session_id: str, kind: Kind, at: datetime, detail: str) -> None:
        """A failure with no running phase."""
        ...

    def failures_since(self, since: datetime) -> int:
        """Attempts begun since a moment that did not pass."""
        ...

    def recent(self, limit: int) -> list[dict[str, object]]:
        """The newest attempts."""
        ...

    def pause(self) -> tuple[datetime | None, datetime | None]:
        """(paused until, last reset)."""
        ...

    def set_pause(self, until: datetime) -> None:
        """Pause face until a moment."""
        ...

    def reset(self, at: datetime) -> None:
        """Lift the pause and forget earlier failures."""
        ...


@dataclass(frozen=True)
class PauseRule:
    """`failures` within `window` pause face for `pause`."""

    failures: int = 10
    window: timedelta = timedelta(seconds=600)
    pause: timedelta = timedelta(seconds=600)


class TerminalAttempts:
    """The terminal-wide failure window and face's pause over the attempt journal."""

    def __init__(self, journal: AttemptsPort, clock: Clock, rule: PauseRule) -> None:
        self._journal = journal
        self._clock = clock
        self._rule = rule

    def paused_until(self) -> datetime | None:
        """When face becomes available again, or None when it is not paused (the window is checked first,
        so the screen never offers face that the next frame would refuse)."""
        self._pause_if_full()
        return self._paused_until()

    def _paused_until(self) -> datetime | None:
        until, _ = self._journal.pause()
        return until if until is not None and self._clock.now() < until else None

    def begin_face(self, session_id: str) -> int:
        """Start a face attempt (counted as failed until it passes); FacePausedError while paused."""
        self._refuse_if_paused()
        return self._journal.begin(session_id, "face", self._clock.now())

    def end_face(self, attempt_id: int, passed: bool, detail: str) -> None:
        """Close a face attempt; a failure may fill the window and pause face."""
        self._journal.end(attempt_id, "pass" if passed else "fail", detail)
        if not passed:
            self._pause_if_full()

    def begin_credential(self, session_id: str) -> int:
        """A typed ID number, counted as failed until the face check it names passes.

        Known and unknown numbers count alike, so the window never tells who is enrolled here.
        """
        self._refuse_if_paused()
        return self._journal.begin(session_id, "credential", self._clock.now())

    def end_credential(self, attempt_id: int, passed: bool, detail: str) -> None:
        """Close a typed ID's attempt: passed when its face 1:1 passed."""
        self._journal.end(attempt_id, "pass" if passed else "fail", detail)
        if not passed:
            self._pause_if_full()

    def credential_failed(self, session_id: str, detail: str) -> None:
        """A refused or unknown credential: counted in the same window as face."""
        self._journal.failed(session_id, "credential", self._clock.now(), detail)
        self._pause_if_full()

    def reset(self) -> None:
        """A technician lifts the pause; earlier failures stop counting."""
        self._journal.reset(self._clock.now())
        log.warning("identification pause lifted by a technician")

    def state(self) -> dict[str, Any]:
        """The technician's view: the pause, the window's count and the newest attempts."""
        until = self.paused_until()
        return {
            "paused_until": until.isoformat() if until else None,
            "failures_in_window": self._failures_in_window(),
            "pause_after": self._rule.failures,
            "window_s": self._rule.window.total_seconds(),
            "pause_s": self._rule.pause.total_seconds(),
            "recent": self._journal.recent(20),
        }

    def _failures_in_window(self) -> int:
        until, reset = self._journal.pause()
        since = self._clock.now() - self._rule.window
        # A pause that has run out spent the failures that caused it (else a window longer than the
        # pause would pause again at once); a technician's reset forgets everything before it.
        after = timedelta(microseconds=1)
        ended = until is not None and until <= self._clock.now()
        spent = until - self._rule.pause + after if until is not None and ended else None
        for bound in (reset + after if reset is not None else None, spent):
            if bound is not None and bound > since:
                since = bound
        return self._journal.failures_since(since)

    def _refuse_if_paused(self) -> None:
        until = self.paused_until()
        if until is not None:
            raise FacePausedError(f"face recognition is paused on this terminal until {until:%H:%M}")

    def _pause_if_full(self) -> None:
        if self._paused_until() is not None:
            return
        if self._failures_in_window() >= self._rule.failures:
            until = self._clock.now() + self._rule.pause
            self._journal.set_pause(until)
            log.warning("too many failed identifications on this terminal: face paused until %s", until)


class CheckoutAttempts:
    """One checkout's budget: face attempts counted when they start, typed ID numbers when entered."""

    def __init__(self, face_limit: int, credential_limit: int, face_used: int = 0, credentials_used: int = 0):
        self.face_limit = face_limit
        self.credential_limit = credential_limit
        self.face_used = max(0, face_used)
        self.credentials_used = max(0, credentials_used)

    @property
    def face_remaining(self) -> int:
        """Face attempts this checkout may still start."""
        return max(0, self.face_limit - self.face_used)

    def start_face(self) -> None:
        """Spend one face attempt; AttemptsExhaustedError when none is left."""
        if self.face_remaining == 0:
            raise AttemptsExhaustedError(
                "face recognition is not available for this checkout; please use QR code, card or ID number"
            )
        self.face_used += 1

    def enter_credential(self) -> None:
        """Spend one typed ID number; AttemptsExhaustedError when none is left."""
        if self.credentials_used >= self.credential_limit:
            raise CredentialAttemptsError("too many ID numbers entered in this checkout")
        self.credentials_used += 1
