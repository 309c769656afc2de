"""What `medpay sync` and `medpay demo --upstream` print: deliveries, the gallery, the binding results."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlite_utils

from terminal.pipeline.sync import SyncReport
from terminal.store.gallery import gallery_version, last_gallery_sync
from terminal.store.reconcile import report


def describe(result: SyncReport, db: sqlite_utils.Database, limit: int = 20) -> list[str]:
    """Human lines for `medpay sync` and `medpay demo --upstream`: what was delivered and what differed."""
    lines = [
        f"delivered {result.delivered} (recovered by msgid query: {result.recovered_by_query}),"
        f" retries {result.retries}, refused {len(result.refused)}, parked {len(result.parked)}"
    ]
    if result.stopped_on:
        lines.append(f"stopped: {result.stopped_on}")
    synced = last_gallery_sync(db)
    if synced is not None:
        lines.append(f"gallery version {gallery_version(db)}, last synced {synced:%Y-%m-%d %H:%M:%S} UTC")
    rows = report(db, limit)
    if not rows:
        lines.append("upstream results agree with the local estimates")
    for row in rows:
        lines.append(
            f"  {row['msgid']} {row['field']}: local {row['local']} → upstream {row['upstream']} (binding)"
        )
    return lines


def reconciled_lines(
    msgid: str, local: Mapping[str, Any] | None, upstream: Mapping[str, Any] | None
) -> list[str]:
    """The local estimate beside the binding upstream result for one settlement (demo, receipt reprint)."""
    if local is None:
        return [f"{msgid}: no such settlement"]
    if upstream is None:
        return [f"{msgid}: not yet confirmed by the upstream; the local estimate stands for now"]
    theirs = upstream.get("setlinfo", {})
    lines = [f"{msgid}: upstream setl_id {theirs.get('setl_id', '?')}"]
    for name in ("medfee_sumamt", "fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay"):
        mark = "" if str(local.get(name)) == str(theirs.get(name)) else "  ← differs; upstream binds"
        lines.append(f"  {name}: local {local.get(name)}  upstream {theirs.get(name)}{mark}")
    return lines
