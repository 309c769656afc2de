"""QR scanner protocol: terminated lines, told apart into 医保电子凭证 payloads and other codes.

ASSUMPTION (not from a published spec): the content of a 医保电子凭证 QR code is not public. Until the
provincial terminal SDK document says otherwise we treat a scan as an ecToken when it is printable ASCII
drawn from a configurable alphabet (default: letters and digits), its length lies in a configurable
range (default 32-128) and it starts with a configurable prefix (default: none). Everything about the
rule lives in `EcTokenFormat`, so the field can tighten it from configuration without code changes.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from firmware_bridge.protocol.lines import LineFramer, Rejected


@dataclass(frozen=True)
class EcTokenFormat:
    """The (assumed, configurable) shape of a 医保电子凭证 QR payload."""

    prefix: str = ""
    min_length: int = 32
    max_length: int = 128
    alphabet: frozenset[str] = field(default_factory=lambda: frozenset(string.ascii_letters + string.digits))

    def matches(self, payload: str) -> bool:
        """Whether a decoded scan looks like an electronic-credential token."""
        return (
            self.min_length <= len(payload) <= self.max_length
            and payload.startswith(self.prefix)
            and all(ch in self.alphabet for ch in payload)
        )


class QrKind(StrEnum):
    """What a scanned QR code is."""

    EC_TOKEN = "ec_token"  # 医保电子凭证
    OTHER = "other"  # a payment code, a URL, a bill number … not a credential this reader handles


@dataclass(frozen=True)
class QrScan:
    """One decoded scan."""

    payload: str
    kind: QrKind


def classify_qr(payload: str, ec_format: EcTokenFormat) -> QrKind:
    """Tell an electronic-credential payload from any other code."""
    return QrKind.EC_TOKEN if ec_format.matches(payload) else QrKind.OTHER


def redact(payload: str) -> str:
    """A log-safe form of a credential: its head and its length, never the whole token."""
    return f"{payload[:6]}…({len(payload)} chars)"


class QrDecoder:
    """Bytes from a QR scanner → scans and rejections."""

    def __init__(
        self,
        terminator: bytes = b"\r",
        max_length: int = 1024,
        ec_format: EcTokenFormat | None = None,
    ) -> None:
        self._lines = LineFramer(terminator, max_length)
        self.ec_format = ec_format or EcTokenFormat()

    def feed(self, data: bytes) -> list[QrScan | Rejected]:
        """Take received bytes; return decoded scans and rejected stretches, in order."""
        return [self._decode(item) for item in self._lines.feed(data)]

    def idle(self) -> list[QrScan | Rejected]:
        """The line went quiet; reject any fragment."""
        return list(self._lines.idle())

    def reset(self) -> None:
        """Forget partial input."""
        self._lines.reset()

    def _decode(self, item: bytes | Rejected) -> QrScan | Rejected:
        if isinstance(item, Rejected):
            return item
        try:
            # Scanners in a Chinese setting are often configured for GB18030 output; UTF-8 first since
            # it is the stricter decoder and an ecToken is plain ASCII either way.
            text = item.decode("utf-8")
        except UnicodeDecodeError:
            try:
                text = item.decode("gb18030")
            except UnicodeDecodeError:
                return Rejected("not UTF-8 or GB18030 text", len(item))
        if any(not ch.isprintable() for ch in text):
            return Rejected("control characters in scan", len(item))
        return QrScan(text, classify_qr(text, self.ec_format))


class RepeatFilter:
    """Drops a scan identical to one seen within the window (scanners re-read a phone held still).

    The window runs from the last time the payload was seen, so a code held under the scanner for a
    long time still yields one scan. Time comes from the caller, never from a clock read here.
    """

    def __init__(self, window: timedelta, max_entries: int = 64) -> None:
        self.window = window
        self.max_entries = max_entries
        self._last_seen: dict[str, datetime] = {}

    def accept(self, payload: str, at: datetime) -> bool:
        """Whether this scan is new; records it either way."""
        previous = self._last_seen.pop(payload, None)
        self._last_seen[payload] = at
        if len(self._last_seen) > self.max_entries:
            # Dicts keep insertion order and seen payloads are re-inserted: the first key is the stalest.
            del self._last_seen[next(iter(self._last_seen))]
        if previous is None:
            return True
        elapsed = at - previous
        # A clock stepped backwards (NTP, technician) gives a negative gap: treat it as a fresh scan
        # rather than suppressing scans until the clock catches up.
        return elapsed < timedelta(0) or elapsed >= self.window
