"""The real clock; everything else receives a Clock so tests and the rule engine control time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

# China Standard Time; the national envelope's times are local Beijing time.
CST = timezone(timedelta(hours=8), name="CST")


class SystemClock:
    """Wall-clock time in China Standard Time."""

    def now(self) -> datetime:
        """Current time, timezone-aware."""
        return datetime.now(CST)
