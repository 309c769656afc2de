"""The 2207 header of a settlement recorded before migration 0021 whose envelope was pruned, rebuilt.

A 2208 is built on its 2207's header (store/payment_rows.py). Settlements recorded since 0021 keep it
with their payment row; older ones kept it only in their outbox envelope, which is pruned once
delivered. For those, the header is rebuilt the way the checkout builds it (pipeline/outbox.envelope):
this terminal's identity from the config, the settlement's msgid and time, and the insured place the
settlement was priced for, read from its own stored result (the policy note settlement/insured.py
writes: the full code for a local patient, the insured prefecture for one from elsewhere). Never the
person's current registration, which a gallery sync overwrites when they move their insurance: that
would route the 2208 to the wrong centre. Left empty when the result names no place (the centre finds
the settlement by its msgid, `omsgid`). Run when the terminal opens its database; a no-op once done.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime

import sqlite_utils

from terminal.config import TerminalSection
from terminal.domain import INFNO_SETTLE
from terminal.errors import StoreError
from terminal.pipeline.outbox import envelope
from terminal.store.header_rebuild import headerless, keep_header

log = logging.getLogger(__name__)

# The policy note choose_policy() writes for a local patient (settlement/insured.py), as the engine keeps
# it in the trace, names the full insured place. Another region's note names only its prefecture: not the
# field's value, so such a header is left without one (the centre finds the settlement by omsgid).
_LOCAL_PLACE = re.compile(r"本地参保\((\d{6})\)")


def insured_place(result_text: str) -> str:
    """The insured place a stored settlement result names in its policy note; '' when none."""
    try:
        result = json.loads(result_text)
    except ValueError:
        return ""
    trace = result.get("trace") if isinstance(result, dict) else None
    for step in trace if isinstance(trace, list) else []:
        if isinstance(step, dict) and step.get("layer") == "policy":
            text = str(step.get("text", ""))
            found = _LOCAL_PLACE.search(text)
            if found:
                return found.group(1)
    return ""


def rebuild_reversal_headers(db: sqlite_utils.Database, terminal: TerminalSection) -> int:
    """Keep a rebuilt header on each payment row that has none and no envelope; how many."""
    try:
        rows = headerless(db)  # on a damaged file this read fails too: start-up's integrity check says why
        for row in rows:
            rebuilt = envelope(
                INFNO_SETTLE, row["msgid"], terminal, insured_place(row["result"]),
                datetime.fromisoformat(row["setl_time"]), {},
            )  # fmt: skip
            keep_header(db, row["msgid"], rebuilt)
    except StoreError as exc:
        # Not fatal here (a read-only store still serves reads; a damaged one is refused by the start-up
        # check with its own message); tried again at the next start.
        log.error("2207 headers of older settlements not rebuilt: %s", exc)
        return 0
    if rows:
        log.info("rebuilt the 2207 header of %d settlement(s) recorded before migration 0021", len(rows))
    return len(rows)
