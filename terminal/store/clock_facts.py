"""What the store knows about the terminal's clock: the upstream's offset at the last sync, and the latest
time the terminal has recorded (a settlement or an audit record). A read and one counter write; no schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlite_utils

from terminal.store.db import immediate

OFFSET_MS = "clock_upstream_offset_ms"  # upstream time minus this terminal's, at the last answer
CHECKED_AT = "clock_upstream_checked_at"  # when (epoch seconds, this terminal's clock) it was measured


@dataclass(frozen=True)
class ClockFacts:
    """The last measured offset from the upstream's clock, and the latest recorded time."""

    offset_s: float | None
    checked_at: datetime | None
    latest_recorded: datetime | None


def record_upstream_time(db: sqlite_utils.Database, upstream: datetime, local: datetime) -> None:
    """Keep the upstream's clock offset as measured by one answer (upstream's time vs ours on arrival)."""
    offset_ms = round((upstream - local).total_seconds() * 1000)
    with immediate(db):
        db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?), (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            [OFFSET_MS, offset_ms, CHECKED_AT, int(local.timestamp())],
        )


def clock_facts(db: sqlite_utils.Database) -> ClockFacts:
    """The offset and when it was measured (None before any sync), and the latest recorded time."""
    counters = {
        str(r["name"]): int(r["value"])
        for r in db.query("SELECT name, value FROM counters WHERE name IN (?, ?)", [OFFSET_MS, CHECKED_AT])
    }
    # The newest rows by insertion order: a clock stepped back writes times smaller than earlier ones.
    times = [
        _parse(r["at"])
        for r in db.query(
            "SELECT at FROM (SELECT at FROM audit ORDER BY seq DESC LIMIT 1)"
            " UNION ALL SELECT at FROM (SELECT setl_time AS at FROM settlements ORDER BY rowid DESC LIMIT 1)"
        )
    ]
    known = [t for t in times if t is not None]
    return ClockFacts(
        offset_s=counters[OFFSET_MS] / 1000 if OFFSET_MS in counters else None,
        checked_at=datetime.fromtimestamp(counters[CHECKED_AT], tz=UTC) if CHECKED_AT in counters else None,
        latest_recorded=max(known) if known else None,
    )


def _parse(text: object) -> datetime | None:
    try:
        at = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
