"""Reporting the audit chain head upstream after each drain, and what the terminal does with a refusal.

The head is sent with `since`, the chain as it stands at the seq the upstream last accepted (as this
terminal recorded it). When the terminal has no such record (a first report, or a wiped table) and
the upstream holds heads, the upstream answers with the seq it expects and the report is sent once
more with that. A refusal is kept (store/audit_heads.py, audited) and shown by readiness and doctor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime

from terminal.domain import AuditHead
from terminal.errors import AuditHeadRefused
from terminal.ports import Clock
from terminal.store.audit_heads import AuditHeadStore
from terminal.uplink.audit_head import head_from
from terminal.uplink.client import HttpUplink

log = logging.getLogger(__name__)


class HeadReporter:
    """Callable for SyncWorker(report_head=…): sends the head, keeps the verdict; the refusal or ""."""

    def __init__(
        self,
        heads: AuditHeadStore,
        link: HttpUplink,
        clock: Clock,
        new_msgid: Callable[[datetime], str],
        lock: Callable[[], AbstractContextManager[object]] | None = None,
    ) -> None:
        self._heads = heads
        self._link = link
        self._clock = clock
        self._new_msgid = new_msgid
        self._lock = lock or nullcontext

    def __call__(self) -> str:
        with self._lock():
            head = self._heads.head()
            last = self._heads.last_accepted()
            since = self._heads.at(last.seq) if last is not None else None
        try:
            self._send(head, since)
        except AuditHeadRefused as exc:
            expected = head_from({"seq": exc.output.get("expected_seq"), "mac": ""})
            if expected is None:
                return self._refused(head, exc)
            with self._lock():
                # No record at that seq here (the chain is shorter): an empty MAC, which the upstream flags.
                since = self._heads.at(expected.seq) or AuditHead(expected.seq, "")
            try:
                self._send(head, since)
            except AuditHeadRefused as again:
                return self._refused(head, again)
        with self._lock():
            self._heads.note(head, self._clock.now(), accepted=True)
        return ""

    def _send(self, head: AuditHead, since: AuditHead | None) -> None:
        now = self._clock.now()
        self._link.report_audit_head(self._new_msgid(now), head, since, now)

    def _refused(self, head: AuditHead, exc: AuditHeadRefused) -> str:
        reason = exc.err_msg or str(exc)
        log.error("the upstream refused the audit chain head: %s", reason)
        with self._lock():
            self._heads.note(head, self._clock.now(), accepted=False, reason=reason)
        return reason
