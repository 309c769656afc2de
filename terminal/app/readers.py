"""The readers this terminal holds: firmware_bridge readers built from `[devices]`, adapted to the pipeline.

The root builds them (Terminal.readers); the service starts a ReaderWorker over them, which polls each
through the ports in terminal.pipeline.reader_events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields, replace
from typing import Any, Generic, Protocol, Self, TypeVar

from firmware_bridge.link import DeviceHealth, LinkConfig
from firmware_bridge.protocol.barcode import CodeKind, ScannedCode
from firmware_bridge.protocol.card_auth import CHALLENGE_SIZE, CardReading
from firmware_bridge.readers import (
    BarcodeConfig,
    BarcodeReader,
    BasketLineScanned,
    CardConfig,
    CardReader,
    CatalogLookup,
    QrConfig,
    QrReader,
    UnknownCodeScanned,
)
from terminal.config import DevicesSection
from terminal.domain import IdentityClaim
from terminal.errors import TerminalError
from terminal.pipeline.basket import BasketLine, CounterBasket
from terminal.pipeline.counter_items import CounterItems
from terminal.pipeline.reader_events import (
    BarcodeScan,
    CardVerifier,
    CodePayer,
    CredentialSession,
    EcTokenResolver,
    LinkState,
    ReaderWorker,
)
from terminal.ports import Clock

log = logging.getLogger(__name__)


def link_state(health: DeviceHealth) -> LinkState:
    """The pipeline's view of a firmware_bridge link's health."""
    return LinkState(
        url=health.url,
        connected=health.connected,
        reconnects=health.reconnects,
        last_error=health.last_error,
        frames_ok=health.frames_ok,
        frames_rejected=health.frames_rejected,
        dropped=health.dropped,
    )


def catalog_lookup(items: Callable[[], CounterItems]) -> CatalogLookup[BasketLine]:
    """A scanned code (catalogue or shop EAN-13) → its basket line, None when unknown or not sellable here."""

    def lookup(code: ScannedCode) -> BasketLine | None:
        try:
            return items().line(code.code)
        except TerminalError as exc:
            log.warning("barcode %s adds nothing: %s", code.code, exc)
            return None

    return lookup


# ---- adapters: firmware_bridge readers → pipeline ports --------------------------------------------


class _Device(Protocol):
    """What every firmware_bridge reader offers the worker's holder."""

    def start(self) -> object: ...

    def close(self) -> None: ...

    def health(self) -> DeviceHealth: ...


ReaderT = TypeVar("ReaderT", bound=_Device)


class _HeldReader(Generic[ReaderT]):
    """A firmware_bridge reader as the worker holds it: start, stop, link health."""

    def __init__(self, reader: ReaderT) -> None:
        self.reader = reader

    def start(self) -> Self:
        """Start the reader (a card reader starts its poller too)."""
        self.reader.start()
        return self

    def close(self) -> None:
        """Stop the reader."""
        self.reader.close()

    def link_state(self) -> LinkState:
        """The reader's link health."""
        return link_state(self.reader.health())


class QrTokens(_HeldReader[QrReader]):
    """A QrReader as a source of ecTokens."""

    def next_token(self, timeout: float) -> str | None:
        """The next new QR scan's token."""
        claim = self.reader.poll(timeout)
        return claim.mdtrt_cert_no if claim is not None else None


class CardInsertions(_HeldReader[CardReader]):
    """A CardReader as a card slot: its poller tells of each new card, the worker reads it with its own
    challenge.

    The poller already reads each new card (with a challenge of its own) to tell cards apart; that
    reading is only the insertion signal here. The card is read again with the worker's fresh challenge,
    so what gets verified answers the challenge the worker chose and hands to the verifier.
    """

    def next_insertion(self, timeout: float) -> bool:
        """Whether a new card was inserted."""
        return self.reader.poll_reading(timeout) is not None

    def read_card(self, challenge: bytes) -> CardReading | None:
        """The card's answer to `challenge` (READ_CARD_AUTH); None when it was taken out meanwhile."""
        return self.reader.read_card(challenge)


class BarcodeScanner(_HeldReader[BarcodeReader[BasketLine]]):
    """A BarcodeReader as a source of basket scans."""

    def next_scan(self, timeout: float) -> BarcodeScan | None:
        """The next scan: a basket line, an unknown code, or an unreadable scan."""
        event = self.reader.poll(timeout)
        if event is None:
            return None
        if isinstance(event, BasketLineScanned):
            return BarcodeScan(event.code.code, event.line)
        if isinstance(event, UnknownCodeScanned):
            if event.code.kind is CodeKind.PAYMENT:
                return BarcodeScan(event.code.code, problem="a payment code", payment=True)
            return BarcodeScan(event.code.code, problem="not in the catalogue")
        return BarcodeScan("?", problem=f"unreadable: {event.reason}")


class LockedSession:
    """The session as the reader worker drives it: each call under the lock the service's routes hold.

    The terminal's database and models serve one caller at a time; a scan must queue behind a request.
    """

    def __init__(self, session: CredentialSession, lock: AbstractContextManager[Any]) -> None:
        self._session = session
        self._lock = lock

    def view(self) -> dict[str, Any]:
        """The patient's view."""
        with self._lock:
            return self._session.view()

    def identify_credential(self, claim: IdentityClaim) -> dict[str, Any]:
        """Identify by a proven claim."""
        with self._lock:
            return self._session.identify_credential(claim)

    def credential_refused(self, method: str, reason: str) -> dict[str, Any]:
        """A credential that did not prove possession."""
        with self._lock:
            return self._session.credential_refused(method, reason)


class LockedPayer:
    """The session's payment-code step as the barcode reader drives it, under the terminal's lock."""

    def __init__(
        self,
        session: CodePayer,
        lock: AbstractContextManager[Any],
        after: Callable[[], object] | None = None,
    ) -> None:
        self._session = session
        self._lock = lock
        self._after = after  # e.g. the completed payment's receipt queued (app/receipts.py)

    def payment_due(self) -> str | None:
        """The settlement awaiting payment (read without the lock: the journalled state)."""
        return self._session.payment_due()

    def pay_scanned_code(self, auth_code: str) -> dict[str, Any]:
        """Charge the scanned payment code for the session's payment."""
        with self._lock:
            view = self._session.pay_scanned_code(auth_code)
            if self._after is not None:
                try:
                    self._after()
                except TerminalError as exc:  # the payment stands; the worker's next pass tries again
                    log.warning("after a scanned payment code: %s", exc)
            return view


# ---- the terminal's readers ----------------------------------------------------------------------


@dataclass
class Readers:
    """The configured readers (None where `[devices]` has no table), not started until the service runs."""

    qr: QrTokens | None = None
    card: CardInsertions | None = None
    barcode: BarcodeScanner | None = None

    def close(self) -> None:
        """Stop every reader (safe when never started or already stopped)."""
        for item in fields(self):
            device = getattr(self, item.name)
            if device is not None:
                device.close()

    def configured(self) -> list[str]:
        """The names of the fitted readers."""
        return [item.name for item in fields(self) if getattr(self, item.name) is not None]


def build_readers(
    devices: DevicesSection,
    lookup: CatalogLookup[BasketLine],
    clock: Clock,
    link: LinkConfig | None = None,
) -> Readers:
    """The readers `[devices]` configures; `link` overrides timing (tests use short backoffs)."""
    readers = Readers()
    if devices.qr is not None:
        qr_link = _link(link, devices.qr.baudrate)
        readers.qr = QrTokens(QrReader(devices.qr.url, config=QrConfig(link=qr_link), clock=clock))
    if devices.card is not None:
        card_link = _link(link, devices.card.baudrate)
        card = CardReader(devices.card.url, config=CardConfig(link=card_link), clock=clock)
        readers.card = CardInsertions(card)
    if devices.barcode is not None:
        bar_link = _link(link, devices.barcode.baudrate)
        readers.barcode = BarcodeScanner(
            BarcodeReader(devices.barcode.url, lookup, config=BarcodeConfig(link=bar_link), clock=clock)
        )
    return readers


def _link(base: LinkConfig | None, baudrate: int) -> LinkConfig:
    return replace(base or LinkConfig(), baudrate=baudrate)


def build_reader_worker(
    readers: Readers,
    session: CredentialSession,
    basket: CounterBasket,
    clock: Clock,
    *,
    resolver: EcTokenResolver | None = None,
    verifier: CardVerifier[Any] | None = None,
    payer: CodePayer | None = None,
) -> ReaderWorker:
    """The worker over the terminal's readers; a reader without its resolver/verifier notes every scan."""
    if readers.qr is not None and resolver is None:
        log.warning("a QR reader is configured but no ecToken resolver: QR scans will be ignored")
    if readers.card is not None and verifier is None:
        log.warning("a card reader is configured but no card verifier: cards will be ignored")
    return ReaderWorker(
        session,
        clock,
        basket=basket,
        qr=readers.qr,
        resolver=resolver,
        card=readers.card,
        verifier=verifier,
        barcode=readers.barcode,
        payer=payer,
        challenge_size=CHALLENGE_SIZE,
    )
