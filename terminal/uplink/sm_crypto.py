"""The national platform's cryptography on the uplink: SM2 signatures (with SM3), SM4 payload sealing.

SM2 comes from gmssl (pure Python), SM3 and SM4 from `cryptography` (OpenSSL). gmssl draws its random
numbers from Python's `random` module when it is not handed one; that is unfit for a signature nonce
(a predictable nonce reveals the private key), so every nonce here comes from `secrets`, and gmssl's
random-drawing helpers (its SM2 encryption, its key generation) are not used at all.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from gmssl import sm2

from terminal.errors import UplinkError

log = logging.getLogger(__name__)

SM2_KEY_FILE = "uplink_sm2.key"  # hex private key, 0600, beside the Ed25519 key
SIGNTYPE_SM2 = "SM2"  # the envelope's signtype (domain.md: SM2 or SM3)
ENCTYPE_SM4 = "SM4-GCM"
SM4_KEY_BYTES = 16
_NONCE_BYTES = 12
_CURVE = sm2.default_ecc_table
_N = int(_CURVE["n"], 16)
_P = int(_CURVE["p"], 16)
_A = int(_CURVE["a"], 16)
_B = int(_CURVE["b"], 16)
AGREEMENT_CONTEXT = b"medpay-uplink-sm4|"  # followed by the sign_no the data key belongs to
_HEX = len(_CURVE["n"])  # 64 hex digits per coordinate or scalar
_POINT_HEX = re.compile(f"[0-9a-fA-F]{{{2 * _HEX}}}")


class Sm2Signer:
    """An SM2 private key that signs (SM3 digest with the default user id 1234567812345678)."""

    def __init__(self, private_hex: str) -> None:
        d = int(private_hex, 16)
        if not 1 <= d < _N - 1:
            raise UplinkError("the SM2 private key is out of range")
        self._private_hex = f"{d:064x}"
        self.public_hex = _point(d)

    def sign(self, material: bytes) -> str:
        """Base64 of the 64-byte r‖s signature over `material`."""
        crypt = _crypt(self.public_hex, self._private_hex)
        while True:
            nonce = f"{secrets.randbelow(_N - 1) + 1:064x}"
            signature = crypt.sign_with_sm3(material, nonce)
            if signature is not None:  # r or s came out 0: draw another nonce (vanishingly rare)
                return base64.b64encode(bytes.fromhex(signature)).decode()

    @classmethod
    def generate(cls) -> Sm2Signer:
        """A fresh key from the operating system's random source."""
        return cls(f"{secrets.randbelow(_N - 2) + 1:064x}")

    def private_hex(self) -> str:
        """The private key as 64 hex digits (written once to the key file)."""
        return self._private_hex

    def agree(self, ephemeral_hex: str, context: bytes) -> bytes:
        """The 16-byte SM4 data key from the upstream's ephemeral point E: SM3(x(d·E) ‖ context)."""
        shared = _multiply(int(self._private_hex, 16), _checked_point(ephemeral_hex))
        return _derive(shared, context)


def ephemeral_agreement(public_hex: str, context: bytes) -> tuple[str, bytes]:
    """The upstream's side: (E = e·G as hex, the data key SM3(x(e·P) ‖ context)[:16]) for a fresh e."""
    point = _checked_point(public_hex)
    e = secrets.randbelow(_N - 1) + 1  # from the OS, never gmssl's random_hex (Python's `random`)
    return _point(e), _derive(_multiply(e, point), context)


def agreement_context(sign_no: str) -> bytes:
    """What a data key is bound to: this protocol and the sign-in it belongs to."""
    return AGREEMENT_CONTEXT + sign_no.encode("ascii")


def on_curve(point_hex: str) -> bool:
    """Whether x‖y (128 hex digits) is an affine point of the SM2 curve (coordinates below p)."""
    if not _POINT_HEX.fullmatch(point_hex):  # int(…, 16) alone would take "0x", "_" and spaces
        return False
    x, y = int(point_hex[:_HEX], 16), int(point_hex[_HEX:], 16)
    # The curve has cofactor 1, so every affine point on it lies in the prime-order group: checking the
    # equation is enough to rule out invalid-curve and small-subgroup points.
    return x < _P and y < _P and (y * y - (x * x * x + _A * x + _B)) % _P == 0


def _checked_point(point_hex: str) -> str:
    if not on_curve(point_hex):
        raise UplinkError("a received SM2 point is not on the curve")
    return point_hex.lower()


def _multiply(k: int, point_hex: str) -> str:
    crypt = sm2.CryptSM2(private_key=f"{k:064x}", public_key="")
    product = crypt._kg(k, point_hex)
    if product is None:  # the point at infinity: impossible for k in [1, n-1] on a checked point
        raise UplinkError("SM2 key agreement produced no point")
    return str(product)


def _derive(shared_hex: str, context: bytes) -> bytes:
    digest = hashes.Hash(hashes.SM3())
    digest.update(bytes.fromhex(shared_hex[:_HEX]) + context)
    return digest.finalize()[:SM4_KEY_BYTES]


def sm2_verify(public_hex: str, material: bytes, signature_b64: str) -> bool:
    """Whether `signature_b64` (r‖s) is an SM2 signature of `material` under the public key x‖y (hex)."""
    try:
        raw = base64.b64decode(signature_b64, validate=True)
        if len(raw) != 64 or len(public_hex) != 2 * _HEX:
            return False
        r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        # gmssl does not range-check r and s; a signature outside [1, n-1] is malformed.
        if not (1 <= r < _N and 1 <= s < _N):
            return False
        return bool(_crypt(public_hex, "").verify_with_sm3(raw.hex(), material))
    except (ValueError, binascii.Error):
        return False


def sm2_key(data_dir: Path) -> Sm2Signer:
    """The terminal's SM2 key, created (mode 0600, write then rename) on first use under the data folder."""
    path = data_dir / SM2_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(Sm2Signer.generate().private_hex() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        log.info("created uplink SM2 key %s", path)
    try:
        return Sm2Signer(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError) as exc:
        raise UplinkError(f"uplink SM2 key {path} is unreadable: {exc}") from exc


def sm3_hex(data: bytes) -> str:
    """SM3 digest of `data`, hex."""
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize().hex()


def sm4_seal(key: bytes, plaintext: bytes, aad: bytes) -> str:
    """Base64 of nonce ‖ SM4-GCM ciphertext ‖ tag; `aad` (envelope's msgid, infno) is bound, not hidden."""
    if len(key) != SM4_KEY_BYTES:
        raise UplinkError("the SM4 key must be 16 bytes")
    nonce = secrets.token_bytes(_NONCE_BYTES)
    encryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    body = encryptor.update(plaintext) + encryptor.finalize()
    return base64.b64encode(nonce + body + encryptor.tag).decode()


def sm4_open(key: bytes, sealed: str, aad: bytes) -> bytes:
    """The plaintext of sm4_seal's output; UplinkError when it was altered, re-bound or sealed otherwise."""
    try:
        raw = base64.b64decode(sealed, validate=True)
        if len(raw) < _NONCE_BYTES + 16:
            raise ValueError("too short")
        nonce, body, tag = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:-16], raw[-16:]
        decryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
        decryptor.authenticate_additional_data(aad)
        return decryptor.update(body) + decryptor.finalize()
    except (ValueError, binascii.Error, InvalidTag) as exc:
        raise UplinkError(f"an SM4-sealed payload does not open: {exc or 'authentication failed'}") from exc


def _crypt(public_hex: str, private_hex: str) -> sm2.CryptSM2:
    crypt = sm2.CryptSM2(private_key=private_hex, public_key="")
    # Set directly: gmssl's constructor strips a leading "04" with str.lstrip, which also eats any 0 or 4
    # digits that follow and would corrupt a key whose x coordinate starts with them.
    crypt.public_key = public_hex
    return crypt


def _point(d: int) -> str:
    """x‖y of d·G as 128 hex digits (gmssl's scalar multiplication; no randomness involved)."""
    crypt = sm2.CryptSM2(private_key=f"{d:064x}", public_key="")
    return str(crypt._kg(d, _CURVE["g"]))
