"""A person's rights at the terminal and what it keeps only for a while: consent withdrawal and retention.

Withdrawing consent (the counter page with the cashier's token, or `medpay consent withdraw`) deletes the
person's templates and marks the consent withdrawn, audited; face identification no longer finds them,
while their settlements stay in the ledger. Retention purges identification attempts and finished
session journals older than `[storage] retention_days` (terminal/store/retention.py): at start-up and
daily while serving, or by `medpay purge`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import sqlite_utils

from terminal.config import TerminalConfig
from terminal.domain import CertType, IdentityClaim
from terminal.errors import TerminalError, UnknownPersonError
from terminal.ports import Clock
from terminal.store.gallery import SqliteGallery
from terminal.store.retention import Purged, purge_before

log = logging.getLogger(__name__)

PURGE_EVERY_S = 24 * 3600.0


class PrivateTerminal(Protocol):
    """What these use of a Terminal (app/terminal.py)."""

    config: TerminalConfig
    clock: Clock
    lock: threading.RLock

    @property
    def db(self) -> sqlite_utils.Database:
        """The terminal database."""
        ...

    @property
    def gallery(self) -> SqliteGallery:
        """Enrolled people."""
        ...


@dataclass(frozen=True)
class Withdrawn:
    """Whose consent was withdrawn and how many templates were deleted."""

    psn_no: str
    templates_deleted: int


def withdraw_consent(
    terminal: PrivateTerminal, operator: str, *, psn_no: str | None = None, certno: str | None = None
) -> Withdrawn:
    """Withdraw a person's face consent, named by psn_no or ID number (looked up by its HMAC); audited.

    UnknownPersonError when the terminal knows nobody by that name or number.
    """
    if (psn_no is None) == (certno is None):
        raise UnknownPersonError("name the person by psn_no or by ID number, not both")
    with terminal.lock:
        if certno is not None:
            person = terminal.gallery.person_by_claim(IdentityClaim(CertType.ID_NUMBER, certno))
        else:
            assert psn_no is not None
            person = terminal.gallery.person(psn_no)
        deleted = terminal.gallery.withdraw_consent(person.psn_no, operator)
    log.info("consent withdrawn by %s: %d templates deleted", operator, deleted)
    return Withdrawn(person.psn_no, deleted)


def purge_expired(terminal: PrivateTerminal, actor: str = "retention") -> Purged:
    """Purge attempts and finished session journals older than the retention period; audited if any."""
    now = terminal.clock.now()
    cutoff = now - timedelta(days=terminal.config.storage.retention_days)
    with terminal.lock:
        purged = purge_before(terminal.db, cutoff, now, actor)
    log.info(
        "retention: purged %d attempts, %d sessions, %d session events older than %s",
        purged.attempts, purged.sessions, purged.events, cutoff.date(),
    )  # fmt: skip
    return purged


class RetentionPurge:
    """The serve-time purge: once at start-up, then daily, in one daemon thread."""

    def __init__(self, terminal: PrivateTerminal, every_s: float = PURGE_EVERY_S) -> None:
        self._terminal = terminal
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (the first purge at once)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="medpay-retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop and wait for it."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(5.0)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                purge_expired(self._terminal)
            except TerminalError as exc:  # a busy or full store: try again at the next round
                log.warning("retention purge failed: %s [%s]", exc, exc.code)
            if self._stop.wait(self._every_s):
                return
