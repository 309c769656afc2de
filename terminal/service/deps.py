"""What the routes share: the one terminal behind its lock, the checkout session, staff tokens.

No `from __future__ import annotations` here: FastAPI reads the dependency annotations at run time.
"""

import collections
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Header, HTTPException, UploadFile
from starlette.requests import Request

from terminal.app import Terminal
from terminal.app.readers import LockedSession, build_reader_worker
from terminal.devices import DeviceStatus, ReceiptPrinting
from terminal.domain import SettledNotice
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
    lock: threading.Lock = field(init=False)
    # The terminal's camera feeding face attempts; None when no camera is fitted (face not offered).
    capture: CaptureLoop | None = None
    # The technician's upload check (/api/identify): a sliding window, so it cannot become a 1:N oracle.
    identify_checks: RateLimit = field(default_factory=lambda: RateLimit(per_minute=20))
    # The counter basket and the reader worker over the readers the service holds.
    ec_tokens: EcTokenResolver | None = None
    card_verifier: CardVerifier[Any] | None = None
    basket: CounterBasket = field(init=False)
    readers: ReaderWorker = field(init=False)

    def __post_init__(self) -> None:
        self.lock = self.terminal.lock
        term, readers = self.terminal, self.terminal.readers
        self.basket = CounterBasket(term.clock, term.ledger)
        # The root's resolver and verifier unless given; asked for only when that reader is fitted.
        resolver = self.ec_tokens or (term.ec_tokens if readers.qr is not None else None)
        verifier = self.card_verifier or (term if readers.card is not None else None)
        self.readers = build_reader_worker(
            readers, LockedSession(self.checkout, self.lock), self.basket, term.clock,
            resolver=resolver, verifier=verifier,
        )  # fmt: skip
        # While the worker holds the readers, the technician's probes must not open their ports.
        self.devices.hold(lambda: self.readers.link_states() if self.readers.running else {})

    def use_terminal(self) -> Iterator[Terminal]:
        """The terminal, held under the lock for the whole request."""
        with self.lock:
            yield self.terminal

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
        row = self.terminal.ledger.settlement_of(chrg_bchno) if chrg_bchno else None
        if chrg_bchno and row is not None:
            self.notices.settled(SettledNotice.from_ledger(chrg_bchno, row))


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
