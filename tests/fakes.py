"""Fakes shared by several test files: clocks a test controls. Single-use fakes live beside their test."""

from __future__ import annotations

from datetime import datetime, timedelta

from terminal.clock import CST


class FixedClock:
    """A clock that only moves when a test moves it."""

    def __init__(self, at: datetime | None = None) -> None:
        self.at = at or datetime(2025, 6, 3, 9, 30, 0, tzinfo=CST)

    def now(self) -> datetime:
        """The fixed time."""
        return self.at


class SteppingClock:
    """A clock that moves one second each time it is read, from a weekday morning in 2025."""

    def __init__(self, start: datetime | None = None) -> None:
        self.at = start or datetime(2025, 6, 3, 9, 0, 0, tzinfo=CST)

    def now(self) -> datetime:
        """The next second."""
        self.at += timedelta(seconds=1)
        return self.at
