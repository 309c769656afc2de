"""One-shot device probes for provisioning and `medpay doctor`: does the configured reader answer?

Each probe runs the real reader class (the same link, framing and protocol code the terminal uses) for a
moment: the card reader must answer PING and CARD_STATUS; a QR or barcode scanner only speaks when
something is scanned, so its port must open and whatever arrives during the listening window must parse.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from firmware_bridge.link import DeviceHealth, LinkConfig
from firmware_bridge.readers import (
    BarcodeConfig,
    BarcodeReader,
    CardConfig,
    CardReader,
    QrConfig,
    QrReader,
    UnreadableScan,
)
from terminal.errors import DeviceError, FrameError

DeviceKind = Literal["qr", "card", "barcode"]
DEVICE_KINDS: tuple[DeviceKind, ...] = ("qr", "card", "barcode")
DEVICE_NAMES: dict[DeviceKind, str] = {
    "qr": "QR scanner",
    "card": "card reader",
    "barcode": "barcode scanner",
}
DEFAULT_BAUDRATE: dict[DeviceKind, int] = {"qr": 9600, "card": 115200, "barcode": 9600}

_STEP = 0.05  # how often a probe looks at the reader's counters while listening


class ProbeStatus(StrEnum):
    """Outcome of probing one device."""

    OK = "ok"
    NOT_CONFIGURED = "not configured"
    UNREACHABLE = "unreachable"  # the port did not open
    BAD_ANSWER = "bad answer"  # the port opened, but the device did not speak its protocol


@dataclass(frozen=True)
class ProbeResult:
    """What a probe found about one device, and how to fix it when it is not usable."""

    kind: DeviceKind
    url: str | None
    status: ProbeStatus
    detail: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        """Usable, or deliberately absent."""
        return self.status in (ProbeStatus.OK, ProbeStatus.NOT_CONFIGURED)

    def describe(self) -> str:
        """One line for a summary table or the doctor's output."""
        where = f" ({self.url})" if self.url else ""
        return f"{DEVICE_NAMES[self.kind]}{where}: {self.status}, {self.detail}"


def probe_device(
    kind: DeviceKind,
    url: str | None,
    baudrate: int | None = None,
    *,
    open_timeout: float = 2.0,
    command_timeout: float = 1.0,
    listen: float = 1.0,
) -> ProbeResult:
    """Open the device at url once and check that it speaks its protocol; never raises for device faults."""
    if not url:
        return ProbeResult(kind, None, ProbeStatus.NOT_CONFIGURED, f"no [devices.{kind}] in the config")
    # Short reads and a quick backoff: a probe wants an answer in seconds, not the reader's patient retries.
    link = LinkConfig(
        baudrate=baudrate or DEFAULT_BAUDRATE[kind], read_timeout=_STEP, backoff_initial=0.05, backoff_max=0.5
    )
    if kind == "card":
        return _probe_card(url, link, open_timeout, command_timeout)
    return _probe_scanner(kind, url, link, open_timeout, listen)


def _probe_card(url: str, link: LinkConfig, open_timeout: float, command_timeout: float) -> ProbeResult:
    # poll_interval: the background poller must stay out of the way while the probe sends its commands.
    config = CardConfig(link=link, command_timeout=command_timeout, retries=2, poll_interval=3600.0)
    with CardReader(url, config=config, name="card probe") as reader:
        if not _opened(reader, open_timeout):
            return _unreachable("card", url, reader.health())
        try:
            firmware = reader.ping()
            present, _count = reader.card_status()
        except (DeviceError, FrameError) as exc:
            return ProbeResult(
                "card",
                url,
                ProbeStatus.BAD_ANSWER,
                str(exc),
                f"check the port and the baud rate ({link.baudrate} 8N1); the reader must speak the "
                "medpay card protocol (docs/devices.md)",
            )
    slot = "a card in the slot" if present else "no card in the slot"
    return ProbeResult("card", url, ProbeStatus.OK, f"answers: firmware {firmware!r}, {slot}")


def _probe_scanner(
    kind: DeviceKind, url: str, link: LinkConfig, open_timeout: float, listen: float
) -> ProbeResult:
    reader: QrReader | BarcodeReader[None]
    if kind == "qr":
        # any parsed code counts (frames_ok), credential or not: the probe tests the wire, not the token
        reader = QrReader(url, config=QrConfig(link=link), name="qr probe")
    else:
        reader = BarcodeReader(url, lambda _code: None, config=BarcodeConfig(link=link), name="barcode probe")
    with reader:
        if not _opened(reader, open_timeout):
            return _unreachable(kind, url, reader.health())
        # Listen until the first frame (good or bad) or the window ends; an idle scanner is not a fault.
        deadline = time.monotonic() + listen
        while time.monotonic() < deadline:
            event = reader.poll(_STEP)
            health = reader.health()
            if isinstance(event, UnreadableScan) or (event is None and health.frames_rejected):
                reason = event.reason if isinstance(event, UnreadableScan) else health.last_error
                return ProbeResult(
                    kind,
                    url,
                    ProbeStatus.BAD_ANSWER,
                    f"received something that is not a scan: {reason}",
                    f"set the scanner to serial (USB-COM) mode, {link.baudrate} 8N1, with a CR suffix "
                    "(docs/devices.md)",
                )
            if event is not None or health.frames_ok:
                return ProbeResult(kind, url, ProbeStatus.OK, "port opens; a scan was received and parsed")
    return ProbeResult(
        kind, url, ProbeStatus.OK, f"port opens; nothing scanned during the {listen:g} s probe"
    )


def _opened(reader: CardReader | QrReader | BarcodeReader[None], timeout: float) -> bool:
    """Wait for the port to open; give up at the first failed attempt, since a probe does not retry."""
    deadline = time.monotonic() + timeout
    while not reader.wait_connected(_STEP):
        if reader.health().last_error or time.monotonic() >= deadline:
            return False
    return True


def _unreachable(kind: DeviceKind, url: str, health: DeviceHealth) -> ProbeResult:
    error = health.last_error or "the port did not open in time"
    return ProbeResult(kind, url, ProbeStatus.UNREACHABLE, error, unreachable_fix(url, error))


def unreachable_fix(url: str, error: str) -> str:
    """What a technician should do about a port that does not open, judged from pyserial's message."""
    if "Permission denied" in error:
        return "add the terminal's user to the dialout group; check no other program holds it (fuser PORT)"
    if "Connection refused" in error or "timed out" in error:
        return f"nothing answers at {url}: start the simulator or power the serial-to-Ethernet converter"
    if "no ports found" in error:
        return "no USB device with that VID:PID is plugged in (python -m serial.tools.list_ports -v)"
    if "No such file" in error:
        return (
            "check the cable; prefer /dev/serial/by-id/… or hwgrep://VID:PID, since ttyUSB numbers "
            "change after a replug"
        )
    return "check the URL in [devices] of the terminal config (docs/devices.md)"
