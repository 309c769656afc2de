"""Entry points the CLI and the composition root call: build the uplink, sync, show reconciliation."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from terminal.config import TerminalSection
from terminal.errors import UplinkError
from terminal.pipeline.sync import SyncReport, SyncWorker
from terminal.ports import Clock
from terminal.store.gallery import SqliteGallery
from terminal.store.keys import TemplateCipher, read_key
from terminal.store.outbox import OutboxStore
from terminal.store.policy_files import load_trusted_keys
from terminal.store.reconcile import local_setlinfo, report
from terminal.uplink.client import HttpUplink
from terminal.uplink.config import UplinkSection
from terminal.uplink.gallery import gallery_version, last_gallery_sync, sync_gallery
from terminal.uplink.signing import terminal_key

log = logging.getLogger(__name__)

REGISTRATION_FILE = "upstream_registration.json"  # in the data folder, beside the uplink signing key


def identity(terminal: TerminalSection) -> dict[str, str]:
    """The envelope fields naming this terminal."""
    return {
        "opter": terminal.terminal_id,
        "opter_name": terminal.terminal_id,
        "dev_no": terminal.terminal_id,
        "fixmedins_code": terminal.fixmedins_code,
        "fixmedins_name": terminal.fixmedins_name,
        "mdtrtarea_admvs": terminal.mdtrtarea_admvs,
    }


def build_uplink(data_dir: Path, terminal: TerminalSection, url: str, timeout_s: float = 10.0) -> HttpUplink:
    """An HTTP uplink signing with this terminal's key (created under data_dir on first use)."""
    return HttpUplink(url, terminal_key(data_dir), identity(terminal), timeout=timeout_s)


def sync_once(
    db: sqlite_utils.Database,
    data_dir: Path,
    terminal: TerminalSection,
    section: UplinkSection,
    clock: Clock,
    new_msgid: Callable[[datetime], str],
    url: str | None = None,
    day: str | None = None,
) -> tuple[SyncReport, dict[str, Any] | None]:
    """Drain the outbox, then pull the gallery delta (when configured) and compare `day`'s totals."""
    target = url or section.url
    if not target:
        raise ValueError("no upstream URL: set [uplink] url or pass --upstream")
    link = build_uplink(data_dir, terminal, target, section.timeout_s)
    try:
        worker = SyncWorker(
            OutboxStore(db),
            link,
            clock,
            new_msgid,
            batch=section.batch,
            backoff=section.backoff(),
            sleep=time.sleep,
        )
        result = worker.drain()
        # Settlements first: the gallery waits for a drain that got through, and a refused delta
        # (GalleryDeltaError) is raised only after the outbox has been delivered and recorded.
        if section.gallery_trusted_keys is not None and not result.stopped_on:
            gallery = SqliteGallery(db, TemplateCipher(read_key(data_dir)), clock)
            trusted = load_trusted_keys(section.gallery_trusted_keys)
            sync_gallery(db, link, gallery, new_msgid, clock, trusted)
        totals = worker.compare_totals(day) if day and not result.stopped_on else None
    finally:
        link.close()
    return result, totals


def register_terminal(
    data_dir: Path, terminal: TerminalSection, url: str, at: datetime, msgid: str, timeout_s: float = 10.0
) -> dict[str, Any]:
    """9000: register this terminal (id, institution, area, public key) with the upstream; idempotent."""
    link = build_uplink(data_dir, terminal, url, timeout_s)
    try:
        return link.register(msgid, at)
    finally:
        link.close()


def saved_registration(data_dir: Path) -> dict[str, Any] | None:
    """The registration the upstream last confirmed (see record_registration); None if never recorded."""
    path = data_dir / REGISTRATION_FILE
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UplinkError(f"registration record {path} is unreadable: {exc}; register again") from exc
    if not isinstance(saved, dict):
        raise UplinkError(f"registration record {path} is not a JSON object; register again")
    return saved


def record_registration(data_dir: Path, registration: Mapping[str, Any], url: str) -> bool:
    """Keep what the upstream confirmed (9000) and where; True when the record changed."""
    record = {**registration, "url": url}
    if saved_registration(data_dir) == record:
        return False
    path = data_dir / REGISTRATION_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    # Written then renamed: `medpay doctor` must never read half a record after a power cut.
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(record, handle, ensure_ascii=False, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return True


def describe(result: SyncReport, db: sqlite_utils.Database, limit: int = 20) -> list[str]:
    """Human lines for `medpay sync` and `medpay demo --upstream`: what was delivered and what differed."""
    lines = [
        f"delivered {result.delivered} (recovered by msgid query: {result.recovered_by_query}),"
        f" retries {result.retries}, refused {len(result.refused)}"
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


def reconciled_lines(db: sqlite_utils.Database, msgid: str) -> list[str]:
    """The local estimate beside the binding upstream result for one settlement (demo, receipt reprint)."""
    local = local_setlinfo(db, msgid)
    upstream = OutboxStore(db).upstream_result(msgid)
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
