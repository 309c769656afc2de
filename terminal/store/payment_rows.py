"""What a payment row keeps beside its saga state: the 2207's header for its 2208, and retry counters.

The 2208 that undoes a settlement is built on the 2207's header (terminal, areas, operator). That header
is kept with the settlement's payment row when the settlement is recorded, so a reversal never depends on
the 2207's outbox envelope, which is dropped once delivered (OutboxStore.prune_delivered). A settlement
recorded before migration 0021 whose envelope was pruned already has neither: its header is rebuilt from
what the terminal knows when it starts (app/reversal_headers.py, store/header_rebuild.py). Retries that
change nothing (the same poll answer, the same refusal) count in the row instead of adding a phase and
an audit record on every pass.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlite_utils


def header_of(envelope: Mapping[str, Any]) -> str:
    """The envelope's header as JSON (everything but its input): what a 2208 is built on."""
    return json.dumps(
        {k: v for k, v in envelope.items() if k != "input"}, ensure_ascii=False, sort_keys=True, default=str
    )


def add_payment_rows(db: sqlite_utils.Database) -> None:
    """Migration 0021: the header, attempts and last_error columns; headers filled from the outbox."""
    db.execute("ALTER TABLE payments ADD COLUMN header TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE payments ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE payments ADD COLUMN last_error TEXT NOT NULL DEFAULT ''")
    rows = db.execute(
        "SELECT p.msgid, o.envelope FROM payments p JOIN outbox o ON o.msgid = p.msgid"
    ).fetchall()
    for msgid, envelope in rows:
        db.execute("UPDATE payments SET header = ? WHERE msgid = ?", [header_of(json.loads(envelope)), msgid])


def stored_header(db: sqlite_utils.Database, msgid: str) -> dict[str, Any] | None:
    """The 2207 header kept for `msgid`: from its payment row, else its outbox envelope; None when neither."""
    rows = list(db.query("SELECT header FROM payments WHERE msgid = ? AND header != ''", [msgid]))
    if rows:
        return dict(json.loads(rows[0]["header"]))
    # A settlement recorded before migration 0021 whose envelope was still queued then (never pruned).
    queued = list(db.query("SELECT envelope FROM outbox WHERE msgid = ?", [msgid]))
    if queued:
        return {k: v for k, v in dict(json.loads(queued[0]["envelope"])).items() if k != "input"}
    return None
