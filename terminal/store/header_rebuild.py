"""Payment rows that lost their 2207 header before migration 0021 kept it, and keeping a rebuilt one.

Migration 0021 took each payment row's header from its 2207's outbox envelope; an envelope delivered and
pruned before then left the row without one, and such a settlement could not be reversed. What the
terminal still knows is enough to rebuild it (app/reversal_headers.py): its own identity (config), the
settlement's msgid and time, and the settlement's stored result (its policy note names the insured
place it was priced for). Never the person's current registration: a gallery sync overwrites it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlite_utils

from terminal.store.db import immediate
from terminal.store.payment_rows import header_of


def headerless(db: sqlite_utils.Database) -> list[dict[str, str]]:
    """Payment rows with no header and no outbox envelope to take one from: msgid, setl_time and the
    settlement's stored result (its JSON text, as recorded)."""
    rows = db.query(
        "SELECT p.msgid, s.setl_time, s.result FROM payments p"
        " JOIN settlements s ON s.msgid = p.msgid"
        " LEFT JOIN outbox o ON o.msgid = p.msgid"
        " WHERE p.header = '' AND o.msgid IS NULL ORDER BY p.msgid"
    )
    return [{k: str(v) for k, v in row.items()} for row in rows]


def keep_header(db: sqlite_utils.Database, msgid: str, envelope: Mapping[str, Any]) -> None:
    """Keep the envelope's header (its input dropped) for `msgid` where none is kept yet."""
    with immediate(db):
        db.execute(
            "UPDATE payments SET header = ? WHERE msgid = ? AND header = ''", [header_of(envelope), msgid]
        )
