"""The uplink over a Terminal's identity: registration, and one sync run (outbox, gallery, daily totals)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from terminal.app.audit_heads import HeadReporter
from terminal.app.clock_guard import time_recorder
from terminal.app.terminal import refuse_development_keys, uplink_backoff
from terminal.config import (
    TerminalSection,
    UplinkSection,
)
from terminal.pipeline.sync import Backoff, SyncReport, SyncWorker
from terminal.ports import Clock
from terminal.store.audit_heads import AuditHeadStore
from terminal.store.gallery import SqliteGallery
from terminal.store.keys import TemplateCipher, read_key
from terminal.store.outbox import OutboxStore
from terminal.store.people import device_keys
from terminal.store.policy_files import load_trusted_keys
from terminal.uplink.client import HttpUplink
from terminal.uplink.gallery import sync_gallery
from terminal.uplink.registration import identity
from terminal.uplink.signing import uplink_keys


def build_uplink(
    data_dir: Path,
    terminal: TerminalSection,
    url: str,
    timeout_s: float = 10.0,
    on_time: Callable[[datetime], None] | None = None,
) -> HttpUplink:
    """An HTTP uplink signing with this terminal's key (created under data_dir on first use)."""
    return HttpUplink(url, uplink_keys(data_dir), identity(terminal), timeout=timeout_s, on_time=on_time)


def register_terminal(
    data_dir: Path, terminal: TerminalSection, url: str, at: datetime, msgid: str, timeout_s: float = 10.0
) -> dict[str, Any]:
    """9000: register this terminal (id, institution, area, public key) with the upstream; idempotent."""
    link = build_uplink(data_dir, terminal, url, timeout_s)
    try:
        return link.register(msgid, at)
    finally:
        link.close()


def sync_once(
    db: sqlite_utils.Database,
    data_dir: Path,
    terminal: TerminalSection,
    section: UplinkSection,
    clock: Clock,
    new_msgid: Callable[[datetime], str],
    url: str | None = None,
    day: str | None = None,
    backoff: Backoff | None = None,
) -> tuple[SyncReport, dict[str, Any] | None]:
    """Drain the outbox, then pull the gallery delta (when configured) and compare `day`'s totals."""
    target = url or section.url
    if not target:
        raise ValueError("no upstream URL: set [uplink] url or pass --upstream")
    # Every answer's time is compared with this terminal's clock (pipeline/clock_integrity.py).
    link = build_uplink(data_dir, terminal, target, section.timeout_s, time_recorder(db, clock))
    try:
        worker = SyncWorker(
            OutboxStore(db),
            link,
            clock,
            new_msgid,
            batch=section.batch,
            backoff=backoff or uplink_backoff(section),
            sleep=time.sleep,
            report_head=HeadReporter(AuditHeadStore(db), link, clock, new_msgid),
        )
        result = worker.drain()
        # Settlements first: the gallery waits for a drain that got through, and a refused delta
        # (GalleryDeltaError) is raised only after the outbox has been delivered and recorded.
        if section.gallery_trusted_keys is not None and not result.stopped_on:
            gallery = SqliteGallery(db, TemplateCipher(read_key(data_dir)), clock, device_keys(db, data_dir))
            trusted = load_trusted_keys(section.gallery_trusted_keys)
            refuse_development_keys(terminal, trusted, "gallery")
            sync_gallery(db, link, gallery, new_msgid, clock, trusted, section.gallery_delta_max_age_s)
        totals = worker.compare_totals(day) if day and not result.stopped_on else None
    finally:
        link.close()
    return result, totals
