"""Signed requests and answers on the payment wire (docs/payment.md §3): HMAC-SHA256 under the merchant key.

Both directions sign a canonical string of newline-terminated lines. A request covers its method, path
(with query), timestamp, nonce and the SHA-256 of its body; an answer additionally covers its HTTP status
and the nonce of the request it answers, so an answer cannot be replayed to another request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from terminal.errors import ConfigError

# Header names; the merchant id travels in requests only.
MCH_ID = "Pay-Mch-Id"
TIMESTAMP = "Pay-Timestamp"
NONCE = "Pay-Nonce"
SIGNATURE = "Pay-Signature"
SIGN_TYPE = "Pay-Sign-Type"
HMAC_SHA256 = "HMAC-SHA256"

# How far a signed timestamp may be from the reader's clock, either way, before it is refused as stale.
MAX_SKEW_S = 300
MIN_KEY_BYTES = 32


def body_digest(body: bytes) -> str:
    """Hex SHA-256 of a body (of the empty string for none)."""
    return hashlib.sha256(body).hexdigest()


def request_string(method: str, path: str, timestamp: int, nonce: str, body: bytes) -> str:
    """The canonical string a request's signature covers."""
    return "".join(f"{line}\n" for line in (method.upper(), path, timestamp, nonce, body_digest(body)))


def answer_string(
    status: int, method: str, path: str, request_nonce: str, timestamp: int, nonce: str, body: bytes
) -> str:
    """The canonical string an answer's signature covers; bound to the request by its nonce."""
    lines = ("ANSWER", status, method.upper(), path, request_nonce, timestamp, nonce, body_digest(body))
    return "".join(f"{line}\n" for line in lines)


def sign(key: bytes, canonical: str) -> str:
    """Hex HMAC-SHA256 of a canonical string under the merchant key."""
    return hmac.new(key, canonical.encode("utf-8"), hashlib.sha256).hexdigest()


def new_nonce() -> str:
    """A fresh random nonce (32 hex characters)."""
    return secrets.token_hex(16)


@dataclass(frozen=True)
class Signed:
    """The signature headers read from a request or an answer."""

    timestamp: int
    nonce: str
    signature: str


class SignatureProblem(ValueError):
    """Missing, malformed, stale or wrong signature headers (the reason is the message)."""


def read_signed(headers: Mapping[str, str], now: float) -> Signed:
    """The signature headers (any case), checked for shape and freshness, not yet for the signature."""
    lowered = {name.lower(): value for name, value in headers.items()}
    sign_type = lowered.get(SIGN_TYPE.lower())
    timestamp = lowered.get(TIMESTAMP.lower())
    nonce = lowered.get(NONCE.lower())
    signature = lowered.get(SIGNATURE.lower())
    if not (timestamp and nonce and signature):
        raise SignatureProblem("unsigned: a signature header is missing")
    if sign_type != HMAC_SHA256:
        raise SignatureProblem(f"unknown sign type {sign_type!r}")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureProblem(f"malformed timestamp {timestamp!r}")
    if not (8 <= len(nonce) <= 64 and nonce.isalnum()):
        raise SignatureProblem("malformed nonce")
    if abs(now - int(timestamp)) > MAX_SKEW_S:
        raise SignatureProblem(f"stale timestamp {timestamp} (more than {MAX_SKEW_S} s from now)")
    return Signed(int(timestamp), nonce, signature)


def check(key: bytes, canonical: str, signature: str) -> None:
    """SignatureProblem unless `signature` is the key's signature of `canonical` (constant-time compare)."""
    if not hmac.compare_digest(sign(key, canonical), signature.lower()):
        raise SignatureProblem("the signature does not match")


def signature_headers(key: bytes, canonical: str, timestamp: int, nonce: str) -> dict[str, str]:
    """The headers carrying a signature of `canonical`."""
    return {
        SIGN_TYPE: HMAC_SHA256,
        TIMESTAMP: str(timestamp),
        NONCE: nonce,
        SIGNATURE: sign(key, canonical),
    }


def read_merchant_key(path: Path) -> bytes:
    """The merchant key: the file's text (32+ characters); refused when missing or readable by others."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError as exc:
        raise ConfigError(f"[payment] key_file {path} is missing") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"[payment] key_file {path} cannot be read: {exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"[payment] key_file {path} is readable by others; run `chmod 600 {path}`")
    if len(text) < MIN_KEY_BYTES or not text.isprintable() or " " in text:
        raise ConfigError(
            f"[payment] key_file {path} must hold one key of at least {MIN_KEY_BYTES} printable characters"
        )
    return text.encode("ascii")
