"""Ed25519 signatures over policy bundles: canonical JSON, key ids, trusted public keys.

The signature covers the canonical JSON of the file's "bundle" object exactly as read (keys sorted,
no whitespace, UTF-8, amounts already strings), so what is verified is what is priced with.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from terminal.errors import PolicyError


class Signature(BaseModel):
    """The signature block of a bundle file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alg: Literal["Ed25519"] = Field(description="signature algorithm")
    key_id: str = Field(description="first 16 hex digits of sha256 over the raw 32-byte public key")
    value: str = Field(description="base64 of the 64-byte Ed25519 signature over the canonical bundle JSON")


class TrustedKey(BaseModel):
    """A public key a terminal accepts bundles from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str = Field(description="as in the bundle's signature block")
    public_key: str = Field(description="base64 of the raw 32-byte Ed25519 public key")
    note: str = Field(
        default="", description="who holds the private key; 'development' keys never in the field"
    )


class TrustedKeys(BaseModel):
    """The trusted-keys file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: tuple[TrustedKey, ...] = Field(description="keys whose signatures are accepted")


def canonical_json(value: Any) -> bytes:
    """Deterministic bytes of a JSON value: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def key_id(public_raw: bytes) -> str:
    """The short id a signature names its key by."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def generate_signing_key() -> tuple[bytes, TrustedKey]:
    """A new Ed25519 key: (private key PEM, the TrustedKey entry to publish). For development and drills."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, _trusted(private.public_key(), "development key")


def _trusted(public: Ed25519PublicKey, note: str) -> TrustedKey:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return TrustedKey(key_id=key_id(raw), public_key=base64.b64encode(raw).decode(), note=note)


def _private(private_pem: bytes) -> Ed25519PrivateKey:
    try:
        private = serialization.load_pem_private_key(private_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise PolicyError(f"signing key is not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise PolicyError("signing key is not an Ed25519 key")
    return private


def _block(private: Ed25519PrivateKey, material: bytes) -> dict[str, Any]:
    block = Signature(
        alg="Ed25519",
        key_id=_trusted(private.public_key(), "").key_id,
        value=base64.b64encode(private.sign(material)).decode(),
    )
    return block.model_dump()


def sign_bundle(bundle: Mapping[str, Any], private_pem: bytes) -> dict[str, Any]:
    """The whole bundle file document: the bundle and its signature block."""
    return {"bundle": dict(bundle), "signature": _block(_private(private_pem), canonical_json(bundle))}


def sign_detached(data: bytes, private_pem: bytes) -> dict[str, Any]:
    """A detached signature block over a file's exact bytes (the model manifest's manifest.toml.sig)."""
    return _block(_private(private_pem), data)


def verify_detached(data: bytes, block: Any, trusted: Mapping[str, bytes], what: str) -> str:
    """Check a detached signature block over `data`; the key id, PolicyError naming `what` otherwise."""
    return _verify(block, trusted, data, what)


def parse_trusted_keys(data: bytes) -> dict[str, bytes]:
    """key_id → raw public key from the bytes of a trusted-keys file; PolicyError when malformed."""
    try:
        parsed = TrustedKeys.model_validate_json(data)
        keys = {k.key_id: base64.b64decode(k.public_key, validate=True) for k in parsed.keys}
    except (ValidationError, binascii.Error) as exc:
        raise PolicyError(f"trusted-keys file is invalid: {exc}") from exc
    for kid, raw in keys.items():
        if len(raw) != 32 or key_id(raw) != kid:
            raise PolicyError(f"trusted key {kid} does not match its public key")
    return keys


def verify_signature(
    document: Mapping[str, Any], trusted: Mapping[str, bytes], what: str = "policy bundle"
) -> str:
    """Check the document's signature against the trusted keys; the key id, PolicyError naming `what`."""
    return _verify(document.get("signature"), trusted, canonical_json(document["bundle"]), what)


def _verify(raw_sig: Any, trusted: Mapping[str, bytes], material: bytes, what: str) -> str:
    if raw_sig is None:
        raise PolicyError(f"{what} is not signed")
    try:
        sig = Signature.model_validate(raw_sig)
        value = base64.b64decode(sig.value, validate=True)
    except (ValidationError, binascii.Error) as exc:
        raise PolicyError(f"{what} signature block is malformed: {exc}") from exc
    public_raw = trusted.get(sig.key_id)
    if public_raw is None:
        raise PolicyError(f"{what} is signed by key {sig.key_id}, which this terminal does not trust")
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(value, material)
    except InvalidSignature as exc:
        raise PolicyError(f"{what} signature does not verify with key {sig.key_id}: it was altered") from exc
    return sig.key_id
