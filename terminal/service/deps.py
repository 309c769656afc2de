"""What the routes share: the one terminal behind its lock, the checkout session, staff tokens.

A request never waits for the lock without bound: a route holds it with `Service.locked` (or
`Service.hold`), in the route's own worker thread, for at most `[service] lock_wait_s`; past that it
answers 503 TERMINAL_BUSY. The lock is never taken in a dependency: FastAPI runs a dependency and the
route in different pool threads, so a waiter would sit on a pool thread the holder's route body needs.

No `from __future__ import annotations` here: FastAPI reads the dependency annotations at run time.
"""

import collections
import functools
import secrets
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Annotated, Any, ParamSpec, TypeVar

from fastapi import Header, HTTPException, UploadFile
from starlette.requests import Request

from terminal.app import Terminal
from terminal.app.locking import hold
from terminal.app.readers import LockedPayer, LockedSession, build_reader_worker
from terminal.app.receipts import CompletedReceipts
from terminal.devices import DeviceStatus, ReceiptPrinting
from terminal.domain import SettledNotice
from terminal.errors import TerminalBusyError
from terminal.pipeline.basket import CounterBasket
from terminal.pipeline.capture_loop import CaptureLoop
from terminal.pipeline.his_notices import HisNotifier
from terminal.pipeline.reader_events import CardVerifier, EcTokenResolver, ReaderWorker
from terminal.pipeline.session import Session
from terminal.ports import BillSource

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# Where the kiosk browser runs: this machine. uvicorn sets the peer from X-Forwarded-For only for
# proxies on these addresses, so a LAN client cannot claim to be one (docs/threat-model.md).
LOOPBACK = frozenset({"127.0.0.1", "::1"})

P = ParamSpec("P")
R = TypeVar("R")


class RateLimit:
    """At most `per_minute` calls in any sliding minute (monotonic time), else 429."""

    def __init__(self, per_minute: int) -> None:
        self._per_minute = per_minute
        self._calls: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def take(self) -> None:
        """Count one call; HTTPException 429 when the minute is full."""
        now = time.monotonic()
        with self._lock:
            while self._calls and now - self._calls[0] >= 60:
                self._calls.popleft()
            if len(self._calls) >= self._per_minute:
                raise HTTPException(status_code=429, detail="too many checks; wait a minute")
            self._calls.append(now)


class StreamSlots:
    """At most `limit` event streams open at once; each one ends after `max_s` seconds (monotonic)."""

    def __init__(self, limit: int, max_s: float) -> None:
        self.limit = limit
        self.max_s = max_s
        self._open = 0
        self._lock = threading.Lock()

    def take(self, what: str) -> "StreamSlot":
        """A slot for one stream; TerminalBusyError (503) when all are taken."""
        with self._lock:
            if self._open >= self.limit:
                raise TerminalBusyError(f"{what}: {self.limit} event streams are open already")
            self._open += 1
        return StreamSlot(self, time.monotonic() + self.max_s)

    @property
    def open(self) -> int:
        """Streams open now."""
        return self._open

    def _give_back(self) -> None:
        with self._lock:
            self._open -= 1


class StreamSlot:
    """One open stream's place: released once (by the stream's end or the response's background task)."""

    def __init__(self, slots: StreamSlots, deadline: float) -> None:
        self._slots = slots
        self._deadline = deadline
        self._released = False
        self._lock = threading.Lock()

    def expired(self) -> bool:
        """Whether the stream has run its time and should end (the page reconnects)."""
        return time.monotonic() >= self._deadline

    def release(self) -> None:
        """Give the place back; later calls do nothing."""
        with self._lock:
            if self._released:
                return
            self._released = True
        self._slots._give_back()


@dataclass
class Service:
    """The collaborators every route uses, built once by create_app from the terminal."""

    terminal: Terminal
    checkout: Session
    source: BillSource
    notices: HisNotifier
    receipts: ReceiptPrinting | None
    devices: DeviceStatus
    cashier_token: str | None
    technician_token: str | None
    event_interval: float
    # One caller at a time: the terminal's models and database (Terminal.lock, shared with its threads).
    lock: threading.RLock = field(init=False)
    # The terminal's camera feeding face attempts; None when no camera is fitted (face not offered).
    capture: CaptureLoop | None = None
    # The technician's upload check (/api/identify): a sliding window, so it cannot become a 1:N oracle.
    identify_checks: RateLimit = field(default_factory=lambda: RateLimit(per_minute=20))
    # The counter basket and the reader worker over the readers the service holds.
    ec_tokens: EcTokenResolver | None = None
    card_verifier: CardVerifier[Any] | None = None
    basket: CounterBasket = field(init=False)
    readers: ReaderWorker = field(init=False)
    # Every completed payment's receipt, whichever path completed it (app/receipts.py).
    completed_receipts: CompletedReceipts = field(init=False)
    # How long a request waits for the lock, and the event streams' cap ([service] in the config).
    lock_wait_s: float = field(init=False)
    streams: StreamSlots = field(init=False)

    def __post_init__(self) -> None:
        self.lock = self.terminal.lock
        section = self.terminal.config.service
        self.lock_wait_s = section.lock_wait_s
        self.streams = StreamSlots(section.max_streams, section.stream_max_s)
        term, readers = self.terminal, self.terminal.readers
        self.basket = CounterBasket(term.clock, term.ledger)
        self.completed_receipts = CompletedReceipts(term, self.receipts)
        # The root's resolver and verifier unless given; asked for only when that reader is fitted.
        resolver = self.ec_tokens or (term.ec_tokens if readers.qr is not None else None)
        verifier = self.card_verifier or (term if readers.card is not None else None)
        # The readers may wait longer than a request, never forever: past it the scan is noted, not hung.
        waited = _BoundedLock(self.lock, section.background_wait_s, "reader")
        payer = LockedPayer(self.checkout, waited, after=self.completed_receipts.sweep)
        self.readers = build_reader_worker(
            readers, LockedSession(self.checkout, waited), self.basket, term.clock,
            resolver=resolver, verifier=verifier, payer=payer,
        )  # fmt: skip
        # While the worker holds the readers, the technician's probes must not open their ports.
        self.devices.hold(lambda: self.readers.link_states() if self.readers.running else {})

    async def use_terminal(self) -> Terminal:
        """The terminal for a route; the route holds the lock itself (`locked`), in its own thread."""
        return self.terminal

    def hold(self, what: str) -> AbstractContextManager[None]:
        """The lock for a block, waited for at most lock_wait_s; TerminalBusyError (503) past that."""
        return hold(self.lock, self.lock_wait_s, what)

    def locked(self, route: Callable[P, R]) -> Callable[P, R]:
        """A sync route run under the lock (bounded wait), taken and released in the route's thread."""

        @functools.wraps(route)
        def under_lock(*args: P.args, **kwargs: P.kwargs) -> R:
            with self.hold(route.__name__):
                return route(*args, **kwargs)

        return under_lock

    def at_the_terminal(
        self, request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> None:
        """The patient's routes: the kiosk browser on this machine, or the counter with the cashier's token.

        A client elsewhere on the network never drives a checkout: it could otherwise load another of the
        patient's bills and confirm it (the amounts digest is in the view it can read), or type ID numbers
        until face pauses for everyone.
        """
        if request.client is not None and request.client.host in LOOPBACK:
            return
        if self.cashier_token is not None and authorization is not None:
            _bearer(self.cashier_token, "cashier", authorization)
            return
        raise HTTPException(
            status_code=403,
            detail="the checkout is driven from this terminal's screen or the counter (cashier token)",
        )

    def cashier(self, authorization: Annotated[str | None, Header()] = None) -> None:
        """Require the cashier's bearer token."""
        _bearer(self.cashier_token, "cashier", authorization)

    def technician(self, authorization: Annotated[str | None, Header()] = None) -> None:
        """Require the technician's bearer token."""
        _bearer(self.technician_token, "technician", authorization)

    def notify_settled(self, view: dict[str, Any]) -> None:
        """Queue the HIS notice of a bill the ledger now holds; never waits for the HIS."""
        receipt = view.get("receipt") or {}
        chrg_bchno = receipt.get("chrg_bchno") if view.get("state") == "settled" else None
        row = self.terminal.ledger.paid_settlement_of(chrg_bchno) if chrg_bchno else None
        if chrg_bchno and row is not None:
            self.notices.settled(SettledNotice.from_ledger(chrg_bchno, row))


class _BoundedLock:
    """The lock as a context manager that waits at most `wait_s`, then raises TerminalBusyError."""

    def __init__(self, lock: threading.RLock, wait_s: float, what: str) -> None:
        self._lock = lock
        self._wait_s = wait_s
        self._what = what

    def __enter__(self) -> None:
        if not self._lock.acquire(timeout=self._wait_s):
            raise TerminalBusyError(f"{self._what}: the terminal stayed busy for {self._wait_s:g} s")

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def _bearer(expected: str | None, role: str, authorization: str | None) -> None:
    if expected is None:
        raise HTTPException(status_code=401, detail=f"no {role} token is configured on this terminal")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(token.encode(), expected.encode()):
        raise HTTPException(
            status_code=401, detail=f"{role} token required", headers={"WWW-Authenticate": "Bearer"}
        )


def read_upload(upload: UploadFile) -> bytes:
    """An uploaded file's bytes, refused over 10 MB."""
    data = upload.file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise HTTPException(status_code=413, detail="image larger than 10 MB")
    return data
