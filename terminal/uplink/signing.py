"""The terminal's own Ed25519 key and envelope signatures (cainfo) over canonical JSON."""

from __future__ import annotations

import base64
import binascii
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from terminal.errors import UplinkError
from terminal.settlement.signing import canonical_json
from terminal.uplink.wire import SIGNTYPE

log = logging.getLogger(__name__)

KEY_FILE = "uplink_ed25519.pem"


def terminal_key(data_dir: Path) -> Ed25519PrivateKey:
    """The terminal's signing key, created (mode 0600) on first use under the data folder."""
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # Write then rename so a power cut never leaves half a key that would lock the terminal out.
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        log.info("created uplink signing key %s", path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise UplinkError(f"uplink signing key {path} is unreadable: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise UplinkError(f"uplink signing key {path} is not an Ed25519 key")
    return key


def public_key_b64(key: Ed25519PrivateKey) -> str:
    """Base64 of the raw 32-byte public key, as registered with the upstream at sign-in."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def _material(envelope: Mapping[str, Any]) -> bytes:
    return canonical_json({k: v for k, v in envelope.items() if k != "cainfo"})


def sign_envelope(envelope: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """A copy of the envelope with signtype and cainfo set."""
    signed = {**envelope, "signtype": SIGNTYPE}
    signed["cainfo"] = base64.b64encode(key.sign(_material(signed))).decode()
    return signed


def verify_envelope(envelope: Mapping[str, Any], public_b64: str) -> bool:
    """Whether cainfo is a valid signature of this envelope by the given public key."""
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_b64, validate=True))
        public.verify(base64.b64decode(str(envelope.get("cainfo", "")), validate=True), _material(envelope))
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True
