"""The terminal's keys and what they do on the wire: SM2 envelope signatures, SM4 sealing, Ed25519 artefacts.

Envelopes are signed with SM2 (cainfo, signtype "SM2") over canonical JSON without cainfo; every
business payload (`input`) is sealed with the sign-in's SM4 data key before signing (encrypt, then
sign), bound to the envelope by its AAD. The Ed25519 key stays for the terminal's own artefacts (the
signed audit chain head). docs/uplink.md, "Cryptography", says which of this is the national layout
and which is inferred.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminal.errors import UplinkError
from terminal.settlement.signing import canonical_json
from terminal.uplink.sm_crypto import ENCTYPE_SM4, Sm2Signer, sm2_key, sm2_verify, sm4_open, sm4_seal
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


@dataclass(frozen=True)
class UplinkKeys:
    """The terminal's two key pairs: SM2 for the envelope (the platform's), Ed25519 for its own artefacts."""

    artefacts: Ed25519PrivateKey
    envelope: Sm2Signer


def uplink_keys(data_dir: Path) -> UplinkKeys:
    """Both keys from the data folder, each created (0600) on first use."""
    return UplinkKeys(artefacts=terminal_key(data_dir), envelope=sm2_key(data_dir))


def _material(envelope: Mapping[str, Any]) -> bytes:
    return canonical_json({k: v for k, v in envelope.items() if k != "cainfo"})


def sign_envelope(envelope: Mapping[str, Any], signer: Sm2Signer) -> dict[str, Any]:
    """A copy of the envelope with signtype SM2 and cainfo = SM2 (SM3 digest) over the rest."""
    signed = {**envelope, "signtype": SIGNTYPE}
    signed["cainfo"] = signer.sign(_material(signed))
    return signed


def verify_envelope(envelope: Mapping[str, Any], public_hex: str) -> bool:
    """Whether the envelope says SM2 and cainfo is its SM2 signature by the public key x‖y (hex)."""
    if envelope.get("signtype") != SIGNTYPE:
        return False  # no downgrade: an envelope signed any other way is refused, never tried
    return sm2_verify(public_hex, _material(envelope), str(envelope.get("cainfo", "")))


def is_sealed(payload: Any) -> bool:
    """Whether a payload is exactly the sealed form {encType: SM4-GCM, encData}."""
    return (
        isinstance(payload, Mapping)
        and set(payload) == {"encType", "encData"}
        and payload["encType"] == ENCTYPE_SM4
        and isinstance(payload["encData"], str)
    )


def input_aad(envelope: Mapping[str, Any]) -> bytes:
    """What a sealed input is bound to: operation, message and sign-in (moving it elsewhere fails)."""
    return f"{envelope.get('infno')}|{envelope.get('msgid')}|{envelope.get('sign_no')}".encode()


def output_aad(infno: str, msgid: str) -> bytes:
    """What a sealed answer is bound to: the request it answers."""
    return f"resp|{infno}|{msgid}".encode()


def seal(payload: Mapping[str, Any], key: bytes, aad: bytes) -> dict[str, str]:
    """The sealed form of a JSON payload."""
    return {"encType": ENCTYPE_SM4, "encData": sm4_seal(key, canonical_json(dict(payload)), aad)}


def unseal(sealed: Any, key: bytes, aad: bytes) -> dict[str, Any]:
    """The payload of a sealed form; UplinkError when it is not sealed, does not open or is not an object."""
    if not is_sealed(sealed):
        raise UplinkError("the payload is not SM4-sealed")
    try:
        payload = json.loads(sm4_open(key, str(sealed["encData"]), aad))
    except ValueError as exc:
        raise UplinkError(f"a sealed payload is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise UplinkError("a sealed payload is not a JSON object")
    return payload


def seal_input(envelope: Mapping[str, Any], key: bytes) -> dict[str, Any]:
    """A copy of the envelope with its input sealed (sign it afterwards: the signature covers the seal)."""
    return {**envelope, "input": seal(envelope["input"], key, input_aad(envelope))}


def open_input(envelope: Mapping[str, Any], key: bytes) -> dict[str, Any]:
    """A copy of the envelope with its sealed input opened; UplinkError when unsealed or it does not open."""
    return {**envelope, "input": unseal(envelope.get("input"), key, input_aad(envelope))}
