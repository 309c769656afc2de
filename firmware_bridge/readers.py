"""Device readers by URL: QR scanner and card reader (the `Reader` port), pharmacy barcode scanner."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar

import serial

from firmware_bridge.link import DeviceHealth, DropOldestQueue, LinkConfig, Opener, SerialLink
from firmware_bridge.protocol.barcode import BarcodeDecoder, CodeKind, ScannedCode
from firmware_bridge.protocol.card import (
    DEFAULT_MAX_PAYLOAD,
    CardFrame,
    CardFrameDecoder,
    CardRecord,
    CardResponse,
    Command,
    Status,
    decode_card_record,
    encode_frame,
    parse_response,
)
from firmware_bridge.protocol.card_auth import CHALLENGE_SIZE, CardReading, check_challenge, decode_reading
from firmware_bridge.protocol.lines import Rejected
from firmware_bridge.protocol.qr import EcTokenFormat, QrDecoder, QrKind, QrScan, RepeatFilter, redact
from terminal.clock import SystemClock
from terminal.domain import CertType, IdentityClaim
from terminal.errors import DeviceError, FrameError, UnknownCatalogCodeError
from terminal.ports import Clock

log = logging.getLogger(__name__)

LineT = TypeVar("LineT")
LineT_co = TypeVar("LineT_co", covariant=True)


ItemT = TypeVar("ItemT")


class _Decoder(Protocol[ItemT]):
    """A pure bytes → frames decoder (firmware_bridge.protocol)."""

    def feed(self, data: bytes) -> list[ItemT | Rejected]: ...

    def idle(self) -> list[ItemT | Rejected]: ...

    def reset(self) -> None: ...


class _Device(Generic[ItemT]):
    """Start/stop, context manager, health and the link callbacks shared by every reader."""

    _link: SerialLink
    _decoder: _Decoder[ItemT]
    _kind: str  # names the device in health and logs

    def data_received(self, data: bytes) -> None:
        """Link callback: decode received bytes."""
        self._handle(self._decoder.feed(data))

    def idle(self) -> None:
        """Link callback: the line went quiet."""
        self._handle(self._decoder.idle())

    def connection_made(self) -> None:
        """Link callback: a new connection starts a new stream."""
        self._decoder.reset()

    def _handle(self, items: list[ItemT | Rejected]) -> None:
        raise NotImplementedError

    def _rejected(self, reason: str, size: int | None = None) -> None:
        """Count and log a bad frame."""
        self._link.health.frame_rejected(f"{self._kind}: {reason}")
        if size is None:
            log.warning("%s: %s", self._link.name, reason)
        else:
            log.warning("%s: rejected %d bytes: %s", self._link.name, size, reason)

    def start(self) -> Self:
        """Start reading (the port is opened, and reopened, in the background)."""
        self._link.start()
        return self

    def close(self) -> None:
        """Stop reading and close the port."""
        self._link.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def wait_connected(self, timeout: float) -> bool:
        """Wait until the device is connected; False on timeout."""
        return self._link.wait_connected(timeout)

    def health(self) -> DeviceHealth:
        """Connection state and frame counters."""
        return self._link.health.snapshot()

    @property
    def url(self) -> str:
        """The pyserial URL this reader opens."""
        return self._link.url


# ------------------------------------------------------------------------------------------------ QR


@dataclass(frozen=True)
class QrConfig:
    """QR scanner settings."""

    terminator: bytes = b"\r"
    max_length: int = 1024
    # Scanners in continuous mode re-read a phone held under them several times a second.
    repeat_window: timedelta = timedelta(seconds=3)
    ec_format: EcTokenFormat = field(default_factory=EcTokenFormat)
    link: LinkConfig = field(default_factory=LinkConfig)


class QrReader(_Device[QrScan]):
    """A 医保电子凭证 QR scanner: yields IdentityClaim(mdtrt_cert_type 01, token) per new scan."""

    _kind = "QR"

    def __init__(
        self,
        url: str,
        *,
        config: QrConfig | None = None,
        clock: Clock | None = None,
        name: str = "qr",
        on_other_code: Callable[[QrScan], None] | None = None,
        opener: Opener = serial.serial_for_url,
    ) -> None:
        self.config = config or QrConfig()
        self._clock = clock or SystemClock()
        self._decoder = QrDecoder(self.config.terminator, self.config.max_length, self.config.ec_format)
        self._repeats = RepeatFilter(self.config.repeat_window)
        self._on_other_code = on_other_code
        self._link = SerialLink(
            url, self, name=name, config=self.config.link, clock=self._clock, opener=opener
        )
        self._claims: DropOldestQueue[IdentityClaim] = DropOldestQueue(
            self.config.link.queue_size, on_drop=lambda _claim: self._link.health.dropped()
        )
        self.duplicates = 0
        self.other_codes = 0

    def poll(self, timeout: float) -> IdentityClaim | None:
        """Wait up to timeout seconds for the next credential claim."""
        return self._claims.get(timeout)

    def _handle(self, items: list[QrScan | Rejected]) -> None:
        health = self._link.health
        for item in items:
            if isinstance(item, Rejected):
                self._rejected(item.reason, item.size)
                continue
            health.frame_ok()
            if not self._repeats.accept(item.payload, self._clock.now()):
                self.duplicates += 1
                log.debug("%s: repeated scan dropped", self._link.name)
                continue
            if item.kind is QrKind.OTHER:
                self.other_codes += 1
                log.info("%s: scanned a code that is not a 医保电子凭证", self._link.name)
                if self._on_other_code is not None:
                    self._on_other_code(item)
                continue
            log.info("%s: ecToken scanned %s", self._link.name, redact(item.payload))
            self._claims.put(IdentityClaim(mdtrt_cert_type=CertType.EC_TOKEN, mdtrt_cert_no=item.payload))


# ---------------------------------------------------------------------------------------------- card


@dataclass(frozen=True)
class CardConfig:
    """Social-security card reader settings."""

    max_payload: int = DEFAULT_MAX_PAYLOAD
    # The reader answers in a few ms; the chip read behind READ_CARD takes up to a few hundred.
    command_timeout: float = 1.0
    retries: int = 2
    poll_interval: float = 0.3
    link: LinkConfig = field(default_factory=lambda: LinkConfig(baudrate=115200))


_RETRYABLE = frozenset({Status.BAD_REQUEST, Status.BUSY, Status.READ_FAILED})


class CardReader(_Device[CardFrame]):
    """A social-security card reader: yields a CardReading (record + possession proof) per inserted card.

    A background poller asks CARD_STATUS every poll_interval and reads each newly inserted card once,
    with a fresh random challenge (READ_CARD_AUTH); the reading carries the challenge this host sent, so
    `card_auth.verify_reading` (the root's verify_card) can check the card's answer against it.
    Commands are serialised by a lock: the protocol has one request in flight at a time.
    """

    _kind = "card"

    def __init__(
        self,
        url: str,
        *,
        config: CardConfig | None = None,
        clock: Clock | None = None,
        name: str = "card",
        opener: Opener = serial.serial_for_url,
    ) -> None:
        self.config = config or CardConfig()
        self._decoder = CardFrameDecoder(self.config.max_payload)
        self._link = SerialLink(
            url, self, name=name, config=self.config.link, clock=clock or SystemClock(), opener=opener
        )
        self._responses: DropOldestQueue[CardResponse] = DropOldestQueue(8)
        self._readings: DropOldestQueue[CardReading] = DropOldestQueue(
            self.config.link.queue_size, on_drop=lambda _record: self._link.health.dropped()
        )
        self._command_lock = threading.Lock()
        self._seq = 0
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._reconnected = threading.Event()

    def start(self) -> Self:
        """Start the link and the card poller."""
        super().start()
        if self._poller is None:
            self._stop.clear()
            self._poller = threading.Thread(
                target=self._poll_loop, name=f"poll:{self._link.name}", daemon=True
            )
            self._poller.start()
        return self

    def close(self) -> None:
        """Stop polling, then the link."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join(5.0)
            self._poller = None
        super().close()

    def poll(self, timeout: float) -> IdentityClaim | None:
        """The next inserted card's claim, NOT proven: identify only through poll_reading + verify_card."""
        reading = self._readings.get(timeout)
        return reading.record.claim() if reading else None

    def poll_record(self, timeout: float) -> CardRecord | None:
        """Like poll, but the whole card record (name, certno, issuing region); not proven either."""
        reading = self._readings.get(timeout)
        return reading.record if reading else None

    def poll_reading(self, timeout: float) -> CardReading | None:
        """Wait up to timeout seconds for the next inserted card's reading (record, proof, challenge)."""
        return self._readings.get(timeout)

    def transact(self, command: Command, data: bytes = b"") -> CardResponse:
        """Send one command and return its response; DeviceError after the retries are used up."""
        attempts = 1 + self.config.retries
        last = "no answer"
        with self._command_lock:
            for attempt in range(1, attempts + 1):
                self._seq = (self._seq + 1) & 0xFF
                seq = self._seq
                self._responses.clear()
                self._link.write(encode_frame(seq, command, data, self.config.max_payload))
                response = self._await(seq, command)
                if response is None:
                    last = f"no answer within {self.config.command_timeout}s"
                elif response.status in _RETRYABLE:
                    last = f"status {response.status.name}"
                else:
                    return response
                log.info("%s: %s attempt %d/%d: %s", self._link.name, command.name, attempt, attempts, last)
        self._link.health.error(f"{command.name}: {last}")
        raise DeviceError(f"{self._link.name}: {command.name} failed after {attempts} tries: {last}")

    def ping(self) -> str:
        """The reader's firmware identification."""
        response = self._expect_ok(self.transact(Command.PING))
        return response.data.decode("ascii", errors="replace")

    def card_status(self) -> tuple[bool, int]:
        """Whether a card is in the slot, and the reader's insertion counter (0-255, wraps)."""
        response = self._expect_ok(self.transact(Command.CARD_STATUS))
        if len(response.data) != 2 or response.data[0] not in (0, 1):
            raise FrameError(f"{self._link.name}: CARD_STATUS answered {response.data!r}")
        return response.data[0] == 1, response.data[1]

    def card_present(self) -> bool:
        """Whether a card is in the slot."""
        return self.card_status()[0]

    def read_record(self) -> CardRecord | None:
        """Read the card's public data (READ_CARD, proves nothing); None when there is no card."""
        response = self.transact(Command.READ_CARD)
        if response.status is Status.NO_CARD:
            return None
        return decode_card_record(self._expect_ok(response).data)

    def read_card(self, challenge: bytes) -> CardReading | None:
        """Read the card with a challenge (READ_CARD_AUTH, 16-64 fresh random bytes); None without a card.

        The reading proves nothing until verified: see firmware_bridge.protocol.card_auth.verify_reading.
        """
        check_challenge(challenge)
        response = self.transact(Command.READ_CARD_AUTH, challenge)
        if response.status is Status.NO_CARD:
            return None
        return decode_reading(self._expect_ok(response).data, challenge)

    def connection_made(self) -> None:
        """Link callback: a new connection starts a new stream; the card may have changed meanwhile."""
        super().connection_made()
        self._reconnected.set()

    def _expect_ok(self, response: CardResponse) -> CardResponse:
        if response.status is not Status.OK:
            raise DeviceError(f"{self._link.name}: {response.command.name} answered {response.status.name}")
        return response

    def _await(self, seq: int, command: Command) -> CardResponse | None:
        # Monotonic time bounds an I/O wait here; nothing is decided from it beyond "gave up".
        deadline = time.monotonic() + self.config.command_timeout
        while (remaining := deadline - time.monotonic()) > 0:
            response = self._responses.get(remaining)
            if response is None:
                return None
            if response.seq == seq and response.command is command:
                return response
            log.debug("%s: stale response seq %d dropped", self._link.name, response.seq)
        return None

    def _handle(self, items: list[CardFrame | Rejected]) -> None:
        health = self._link.health
        for item in items:
            if isinstance(item, Rejected):
                self._rejected(item.reason, item.size)
                continue
            try:
                response = parse_response(item)
            except FrameError as exc:
                self._rejected(str(exc))
                continue
            health.frame_ok()
            self._responses.put(response)

    def _poll_loop(self) -> None:
        # The insertion counter tells a new card from the one already read even when a quick swap
        # happens between two polls; without it a missed "no card" answer would hide the new card.
        last_count: int | None = None
        reported_sn: str | None = None
        while not self._stop.wait(self.config.poll_interval):
            if not self._link.connected:
                continue
            try:
                present, count = self.card_status()
                if not present:
                    last_count, reported_sn = count, None
                    continue
                after_replug = self._reconnected.is_set()
                if count == last_count and not after_replug:
                    continue
                self._reconnected.clear()
                reading = self.read_card(secrets.token_bytes(CHALLENGE_SIZE))
            except (DeviceError, FrameError) as exc:
                log.warning("%s: %s", self._link.name, exc)
                self._link.health.error(str(exc))
                continue
            if reading is None:
                continue
            last_count = count  # only after a good read, so a failed read is tried again
            # After a replug the reader may have rebooted and reset its counter: report only another card.
            if after_replug and reading.record.card_sn == reported_sn:
                continue
            reported_sn = reading.record.card_sn
            log.info("%s: card read (%r)", self._link.name, reading)
            self._readings.put(reading)


# ------------------------------------------------------------------------------------------- barcode


class CatalogLookup(Protocol[LineT_co]):
    """Turns a scanned code into a basket line; None when the catalogue does not know it."""

    def __call__(self, code: ScannedCode) -> LineT_co | None:
        """The basket line for this code, or None."""
        ...


@dataclass(frozen=True)
class BasketLineScanned(Generic[LineT]):
    """A scanned code the catalogue knows, with its basket line."""

    code: ScannedCode
    line: LineT


@dataclass(frozen=True)
class UnknownCodeScanned:
    """A valid code the catalogue does not know: show it to the cashier, never drop it silently."""

    code: ScannedCode


@dataclass(frozen=True)
class UnreadableScan:
    """A scan that was not a valid code (bad check digit, garbage): ask the cashier to scan again."""

    reason: str


BarcodeEvent = BasketLineScanned[LineT] | UnknownCodeScanned | UnreadableScan


@dataclass(frozen=True)
class BarcodeConfig:
    """Pharmacy barcode scanner settings."""

    terminator: bytes = b"\r"
    max_length: int = 64
    link: LinkConfig = field(default_factory=LinkConfig)


class BarcodeReader(_Device[ScannedCode], Generic[LineT]):
    """A pharmacy barcode scanner: codes → catalogue lookup → basket-line or unknown-code events."""

    _kind = "barcode"

    def __init__(
        self,
        url: str,
        lookup: CatalogLookup[LineT],
        *,
        config: BarcodeConfig | None = None,
        clock: Clock | None = None,
        name: str = "barcode",
        opener: Opener = serial.serial_for_url,
    ) -> None:
        self.config = config or BarcodeConfig()
        self._lookup = lookup
        self._decoder = BarcodeDecoder(self.config.terminator, self.config.max_length)
        self._link = SerialLink(
            url, self, name=name, config=self.config.link, clock=clock or SystemClock(), opener=opener
        )
        self._scans: DropOldestQueue[ScannedCode | Rejected] = DropOldestQueue(
            self.config.link.queue_size, on_drop=lambda _scan: self._link.health.dropped()
        )

    def poll(self, timeout: float) -> BarcodeEvent[LineT] | None:
        """Wait up to timeout seconds for the next scan, looked up in the caller's thread."""
        # The lookup runs here, not in the device thread, so a slow catalogue never stalls the port.
        item = self._scans.get(timeout)
        if item is None:
            return None
        if isinstance(item, Rejected):
            return UnreadableScan(item.reason)
        if item.kind is CodeKind.PAYMENT:
            # A patient's payment code: not a drug, and never looked up or logged whole.
            return UnknownCodeScanned(item)
        try:
            line = self._lookup(item)
        except UnknownCatalogCodeError:
            line = None
        if line is None:
            log.info("%s: code %s (%s) not in the catalogue", self._link.name, item.code, item.kind)
            return UnknownCodeScanned(item)
        return BasketLineScanned(item, line)

    def _handle(self, items: list[ScannedCode | Rejected]) -> None:
        health = self._link.health
        for item in items:
            if isinstance(item, Rejected):
                self._rejected(item.reason, item.size)
            else:
                health.frame_ok()
            self._scans.put(item)
