"""What the in-memory 1:N index reads from the gallery: templates with their bucket, and what changed.

Every write of a person's templates (enrolment, gallery delta, consent withdrawal, removal) bumps that
person's revision in `template_revisions`; a serving terminal compares the highest revision with the
one it loaded and reopens only the people above it, whichever process wrote them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sqlite_utils
from numpy.typing import NDArray

from terminal.store.keys import TemplateCipher
from terminal.store.templates import open_template

_CONSENTED_WITH_BUCKET = (
    "SELECT t.id, t.psn_no, t.model_id, t.sealed_with, t.nonce, t.ciphertext, p.certno_last4"
    " FROM templates t JOIN consents c ON c.id = t.consent_id JOIN persons p ON p.psn_no = t.psn_no"
    " WHERE c.withdrawn_at IS NULL AND t.model_id = ?"
)


def touch_templates(db: sqlite_utils.Database, psn_no: str) -> None:
    """Record that a person's templates changed (call inside the write's transaction)."""
    db.execute(
        "INSERT INTO template_revisions (psn_no, rev)"
        " VALUES (?, (SELECT COALESCE(MAX(rev), 0) + 1 FROM template_revisions))"
        " ON CONFLICT(psn_no) DO UPDATE SET rev = excluded.rev",
        [psn_no],
    )


class TemplateFeed:
    """Reads for the index: one model's consenting templates, decrypted, with each owner's bucket."""

    def __init__(self, db: sqlite_utils.Database, cipher: TemplateCipher) -> None:
        self._db = db
        self._cipher = cipher

    def revision(self) -> int:
        """The highest template revision (0 when nothing was ever written since migration 0012)."""
        row = next(iter(self._db.query("SELECT COALESCE(MAX(rev), 0) AS rev FROM template_revisions")))
        return int(row["rev"])

    def changed_since(self, revision: int) -> list[str]:
        """People whose templates changed after `revision`."""
        rows = self._db.query("SELECT psn_no FROM template_revisions WHERE rev > ?", [revision])
        return [row["psn_no"] for row in rows]

    def everyone(self, model_id: str) -> tuple[list[str], NDArray[np.float32], dict[str, str | None]]:
        """Every consenting template of model_id: (owners, N×D matrix, owner → bucket)."""
        return self._read(_CONSENTED_WITH_BUCKET + " ORDER BY t.id", [model_id])

    def people(
        self, psn_nos: Sequence[str], model_id: str
    ) -> tuple[list[str], NDArray[np.float32], dict[str, str | None]]:
        """The same for some people only (a person with no row left has none: removed from the index)."""
        owners: list[str] = []
        blocks: list[NDArray[np.float32]] = []
        buckets: dict[str, str | None] = {}
        for start in range(0, len(psn_nos), 500):  # SQLite's bound-parameter limit
            chunk = list(psn_nos[start : start + 500])
            marks = ",".join("?" * len(chunk))
            sql = _CONSENTED_WITH_BUCKET + f" AND t.psn_no IN ({marks}) ORDER BY t.id"
            some, matrix, found = self._read(sql, [model_id, *chunk])
            owners += some
            blocks.append(matrix)
            buckets.update(found)
        rows = [block for block in blocks if len(block)]
        return owners, (np.concatenate(rows) if rows else np.zeros((0, 0), dtype=np.float32)), buckets

    def _read(
        self, sql: str, params: list[str]
    ) -> tuple[list[str], NDArray[np.float32], dict[str, str | None]]:
        owners: list[str] = []
        vectors: list[NDArray[np.float32]] = []
        buckets: dict[str, str | None] = {}
        for row in self._db.query(sql, params):
            owners.append(row["psn_no"])
            vectors.append(open_template(self._cipher, row))
            buckets[row["psn_no"]] = row["certno_last4"]
        if not vectors:
            return owners, np.zeros((0, 0), dtype=np.float32), buckets
        return owners, np.stack(vectors), buckets
