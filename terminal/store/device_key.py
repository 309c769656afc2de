"""The device key: 32 random bytes in keys/device.key (0600), the root of the keys protecting people at rest.

From it HKDF-SHA256 derives one key per purpose, so a key used for lookups never also encrypts:
credential lookups (HMAC of a QR token or card number), ID-number lookups (HMAC of the certno) and
sealing a person's name, ID number, sex and birth date (AES-GCM, bound to their psn_no). The file sits
beside the template key; docs/threat-model.md ("Stored state") says what it protects and from whom.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from terminal.errors import KeyFileError, TemplateIntegrityError
from terminal.store.keys import KEY_BYTES, NONCE_BYTES, create_key_file, read_key_file

DEVICE_KEY_FILE = Path("keys") / "device.key"

# HKDF info labels: one derived key per purpose. Never change one: every stored HMAC depends on it.
_CREDENTIAL_LABEL = b"medpay/credential-hmac/v1"
_CERTNO_LABEL = b"medpay/certno-hmac/v1"
_PERSON_LABEL = b"medpay/person-seal/v1"
_PERSON_AAD = b"person-v1\x00"


def device_key_path(data_dir: Path) -> Path:
    """Where the device key lives under a data directory."""
    return data_dir / DEVICE_KEY_FILE


def create_device_key(data_dir: Path) -> Path:
    """Create the device key (0600) unless it exists; return its path. Never replaces an existing key."""
    return create_key_file(device_key_path(data_dir))


def read_device_key(data_dir: Path) -> bytes:
    """Read the device key, refusing a missing, malformed or group/world-readable file."""
    return read_key_file(device_key_path(data_dir), "device key")


def normal_certno(certno: str) -> str:
    """The form an ID number is keyed in: trimmed, upper case (a typed lower-case x is the same number)."""
    return certno.strip().upper()


def certno_last4(certno: str) -> str:
    """The last four characters of an ID number, the second factor a patient types at the kiosk."""
    return normal_certno(certno)[-4:]


class DeviceKeys:
    """The purpose keys derived from the device key: lookup HMACs and the person seal."""

    def __init__(self, device_key: bytes) -> None:
        if len(device_key) != KEY_BYTES:
            raise KeyFileError(f"the device key has {len(device_key)} bytes, expected {KEY_BYTES}")
        self._credential = _derive(device_key, _CREDENTIAL_LABEL)
        self._certno = _derive(device_key, _CERTNO_LABEL)
        self._seal = AESGCM(_derive(device_key, _PERSON_LABEL))

    @classmethod
    def of_data_dir(cls, data_dir: Path) -> DeviceKeys:
        """The keys of the device key under data_dir (KeyFileError when it is missing or too open)."""
        return cls(read_device_key(data_dir))

    def credential_mac(self, cert_type: str, cert_no: str) -> str:
        """The lookup key of a QR token or card number: HMAC-SHA256 of type and number, hex."""
        message = cert_type.encode() + b"\x00" + cert_no.strip().encode()
        return hmac.new(self._credential, message, hashlib.sha256).hexdigest()

    def certno_mac(self, certno: str) -> str:
        """The lookup key of an ID number: HMAC-SHA256 of its normal form, hex."""
        return hmac.new(self._certno, normal_certno(certno).encode(), hashlib.sha256).hexdigest()

    def seal_person(self, psn_no: str, fields: dict[str, Any]) -> bytes:
        """Encrypt a person's personal fields, bound to their psn_no; nonce + ciphertext in one blob."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        plain = json.dumps(fields, ensure_ascii=False, sort_keys=True).encode("utf-8")
        return nonce + self._seal.encrypt(nonce, plain, _PERSON_AAD + psn_no.encode())

    def open_person(self, psn_no: str, blob: bytes) -> dict[str, Any]:
        """Decrypt a sealed person; TemplateIntegrityError when altered, moved or under the wrong key."""
        try:
            plain = self._seal.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _PERSON_AAD + psn_no.encode())
        except InvalidTag as exc:
            raise TemplateIntegrityError(
                f"the sealed record of person {psn_no} fails authentication (tampered, moved or wrong key)"
            ) from exc
        fields: dict[str, Any] = json.loads(plain)
        return fields


def _derive(root: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=label).derive(root)
