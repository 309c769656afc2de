"""Whether the terminal's clock may be trusted with money: near the upstream's, and never behind itself.

Offline age, gallery-delta freshness, the face pause window, settlement dates (and so the policy year)
and the audit all read this clock. Two checks before a settlement is recorded:
- skew: at every sync the upstream's answer carries its time (`respond_time`); the offset measured
  there must stay within `[uplink] max_clock_skew_s`;
- backwards: the clock must not read earlier than the latest settlement or audit record this terminal
  wrote (beyond a small grace for an NTP step).
Pure: the facts come in through a port, the time from the injected clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from terminal.errors import ClockBackwardsError, ClockError, ClockSkewError
from terminal.ports import Clock

log = logging.getLogger(__name__)

# An NTP step or a leap smear moves a clock back by well under this; a clock set back by hand, more.
BACKWARDS_GRACE = timedelta(seconds=5)


class ClockFactsPort(Protocol):
    """What the store knows (terminal/store/clock_facts.py)."""

    @property
    def offset_s(self) -> float | None:
        """Upstream time minus this terminal's at the last sync; None before the first."""
        ...

    @property
    def latest_recorded(self) -> datetime | None:
        """The newest settlement or audit time written here; None on a fresh terminal."""
        ...


def clock_problem(now: datetime, facts: ClockFactsPort, max_skew_s: float) -> ClockError | None:
    """The reason the clock cannot be trusted now, or None."""
    latest = facts.latest_recorded
    if latest is not None and now < latest - BACKWARDS_GRACE:
        return ClockBackwardsError(
            f"the clock reads {now.isoformat()}, earlier than the latest record written here "
            f"({latest.isoformat()}): it was set back; set the time (NTP) before settling again"
        )
    offset = facts.offset_s
    if offset is not None and abs(offset) > max_skew_s:
        direction = "behind" if offset > 0 else "ahead of"
        return ClockSkewError(
            f"the clock is {abs(offset):.0f} s {direction} the upstream's (at the last sync; at most "
            f"{max_skew_s:g} s, [uplink] max_clock_skew_s): set the time (NTP), then sync again"
        )
    return None


@dataclass(frozen=True)
class ClockGuard:
    """Refuses to settle while the clock cannot be trusted (the checkout's `require_settleable`)."""

    facts: Callable[[], ClockFactsPort]  # read afresh for each check (under the caller's lock)
    clock: Clock
    max_skew_s: float

    def problem(self) -> ClockError | None:
        """What is wrong with the clock now, or None."""
        return clock_problem(self.clock.now(), self.facts(), self.max_skew_s)

    def require_settleable(self) -> None:
        """Raise the ClockError saying why nothing may be settled now."""
        problem = self.problem()
        if problem is not None:
            log.error("settling refused: %s", problem)
            raise problem
