"""High-water marks of signed artefacts: a lower revision than one held before is refused, and audited.

A signature proves who issued a file, not that it is the newest: an older bundle, validly signed,
would otherwise price with last year's (or a withdrawn) table after a newer one. The mark is per
artefact (a policy bundle's region and year) and only rises.
"""

from __future__ import annotations

from datetime import datetime

import sqlite_utils

from terminal.errors import PolicyError
from terminal.store import audit
from terminal.store.db import immediate


class HighWater:
    """The highest revision held of each signed artefact."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def held(self, kind: str, artefact: str) -> int | None:
        """The highest revision ever accepted, None before the first."""
        rows = list(
            self._db.query(
                "SELECT revision FROM signed_high_water WHERE kind = ? AND artefact = ?", [kind, artefact]
            )
        )
        return int(rows[0]["revision"]) if rows else None

    def admit(self, kind: str, artefact: str, revision: int, at: datetime) -> None:
        """Accept `revision` (raising the mark, audited) or refuse a lower one: PolicyError, audited."""
        with immediate(self._db):
            held = self.held(kind, artefact)
            if held is not None and revision < held:
                audit.append(
                    self._db, at, "terminal", "signed-state-refused", artefact,
                    {"kind": kind, "revision": revision, "held": held},
                )  # fmt: skip
            elif held is None or revision > held:
                self._db.execute(
                    "INSERT INTO signed_high_water (kind, artefact, revision, updated_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT(kind, artefact) DO UPDATE SET revision = excluded.revision,"
                    " updated_at = excluded.updated_at",
                    [kind, artefact, revision, at.isoformat()],
                )
                audit.append(
                    self._db, at, "terminal", "signed-state-raised", artefact,
                    {"kind": kind, "revision": revision, "was": held},
                )  # fmt: skip
        if held is not None and revision < held:
            raise PolicyError(
                f"{kind} {artefact} revision {revision} is older than revision {held} this terminal already "
                "held: refused (an older signed file put back); install the current one"
            )
