"""The template key: 32 random bytes in a 0600 file, created at provisioning; AES-GCM sealing."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from terminal.errors import KeyFileError, TemplateIntegrityError

KEY_FILE = Path("keys") / "templates.key"
KEY_BYTES = 32
NONCE_BYTES = 12


def key_path(data_dir: Path) -> Path:
    """Where the template key lives under a data directory."""
    return data_dir / KEY_FILE


def create_key(data_dir: Path) -> Path:
    """Create the key file with 0600 permissions unless it exists; return its path."""
    return create_key_file(key_path(data_dir))


def create_key_file(path: Path) -> Path:
    """Create a 32-byte random key file (0600, its folder 0700) unless it exists; return its path."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists():
        return path
    # O_EXCL + mode at creation: the key is never readable by others, not even for an instant.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_bytes(KEY_BYTES))
    return path


def create_token(data_dir: Path, role: str) -> Path:
    """Create a random bearer token for a staff role (cashier, technician) in a 0600 file, once."""
    path = data_dir / "keys" / f"{role}.token"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path


def read_token(data_dir: Path, role: str) -> str | None:
    """A staff role's bearer token, or None when not provisioned (its endpoints then refuse everyone)."""
    path = data_dir / "keys" / f"{role}.token"
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def read_key(data_dir: Path) -> bytes:
    """Read the key, refusing a missing, malformed or group/world-readable file."""
    return read_key_file(key_path(data_dir), "template key")


def read_key_file(path: Path, what: str) -> bytes:
    """Read a 32-byte key file, refusing a missing, malformed or group/world-readable one."""
    try:
        mode = path.stat().st_mode
        key = path.read_bytes()
    except FileNotFoundError as exc:
        raise KeyFileError(f"{what} {path} is missing; run `medpay-provision init`") from exc
    except OSError as exc:
        raise KeyFileError(f"{what} {path} cannot be read: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{what} {path} is readable by others; run `chmod 600 {path}`")
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"{what} {path} has {len(key)} bytes, expected {KEY_BYTES}")
    return key


class TemplateCipher:
    """Seals templates with AES-GCM, binding each to its owner (and model) so rows cannot be swapped."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, owner: str, plaintext: bytes, model_id: str | None = None) -> tuple[bytes, bytes]:
        """Encrypt; returns (nonce, ciphertext). With model_id the row is bound to the model as well."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce, self._aead.encrypt(nonce, plaintext, associated_data(owner, model_id))

    def open(self, owner: str, nonce: bytes, ciphertext: bytes, model_id: str | None = None) -> bytes:
        """Decrypt; TemplateIntegrityError when the row was altered, moved, relabelled or the key is wrong."""
        try:
            return self._aead.decrypt(nonce, ciphertext, associated_data(owner, model_id))
        except InvalidTag as exc:
            bound = f"{owner} (model {model_id})" if model_id else owner
            raise TemplateIntegrityError(
                f"a template of {bound} fails authentication (tampered, relabelled or wrong key)"
            ) from exc


def associated_data(owner: str, model_id: str | None) -> bytes:
    """What a template's ciphertext is bound to: the owner, and since tagging the model that made it.

    None gives the form rows had before templates were tagged (owner only), kept readable after the
    migration (terminal/store/templates.py says which model those rows may claim).
    """
    if model_id is None:
        return owner.encode()
    # NUL cannot occur in a model id (MODEL_ID_PATTERN), so the split point is unambiguous.
    return b"template-v2\x00" + owner.encode() + b"\x00" + model_id.encode()
