"""SM2 signatures, SM3 digests and SM4 sealing as the uplink uses them."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from terminal.errors import UplinkError
from terminal.uplink.sm_crypto import (
    Sm2Signer,
    agreement_context,
    ephemeral_agreement,
    on_curve,
    sm2_key,
    sm2_verify,
    sm3_hex,
    sm4_open,
    sm4_seal,
)

_N = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)  # GB/T 32918.5 order


def test_sm3_and_sm4_give_the_standards_example_values() -> None:
    # GB/T 32905 example 1 ("abc") and GB/T 32907 appendix A (one block, key = plaintext).
    assert sm3_hex(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    block = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    assert (block.update(key) + block.finalize()).hex() == "681edf34d206965e86b3e94f536e4246"


def test_a_public_key_is_a_point_of_the_sm2_curve() -> None:
    # Checked against the curve equation of GB/T 32918.5, independently of gmssl's arithmetic.
    p = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF", 16)
    a = p - 3
    b = int("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93", 16)
    public = Sm2Signer.generate().public_hex
    x, y = int(public[:64], 16), int(public[64:], 16)
    assert (y * y - (x * x * x + a * x + b)) % p == 0


def test_a_signature_verifies_only_for_its_message_and_key() -> None:
    signer, other = Sm2Signer.generate(), Sm2Signer.generate()
    signature = signer.sign(b'{"infno":"2207"}')
    assert sm2_verify(signer.public_hex, b'{"infno":"2207"}', signature)
    assert not sm2_verify(signer.public_hex, b'{"infno":"2208"}', signature)
    assert not sm2_verify(other.public_hex, b'{"infno":"2207"}', signature)
    # A fresh nonce per signature: the same message never gets the same signature twice.
    assert signer.sign(b"same") != signer.sign(b"same")


@pytest.mark.parametrize("forge", ["r=0", "s=0", "r=n", "short", "not base64"])
def test_malformed_signatures_are_refused_without_raising(forge: str) -> None:
    signer = Sm2Signer.generate()
    raw = base64.b64decode(signer.sign(b"m"))
    r, s = raw[:32], raw[32:]
    forged = {
        "r=0": bytes(32) + s,
        "s=0": r + bytes(32),
        "r=n": _N.to_bytes(32, "big") + s,
        "short": raw[:63],
    }.get(forge)
    text = "%%%" if forged is None else base64.b64encode(forged).decode()
    assert not sm2_verify(signer.public_hex, b"m", text)


def test_public_keys_whose_x_starts_with_zero_or_four_still_verify() -> None:
    # gmssl's own constructor would mangle such a key (str.lstrip("04")); ours sets it as it is.
    for _ in range(200):
        signer = Sm2Signer.generate()
        if signer.public_hex[0] in "04":
            assert sm2_verify(signer.public_hex, b"m", signer.sign(b"m"))
            return
    pytest.fail("no key with x starting 0 or 4 in 200 draws")


def test_the_key_file_is_private_and_stable(tmp_path: Path) -> None:
    first = sm2_key(tmp_path / "keys")
    again = sm2_key(tmp_path / "keys")
    assert first.public_hex == again.public_hex and len(first.public_hex) == 128
    mode = stat.S_IMODE(os.stat(tmp_path / "keys" / "uplink_sm2.key").st_mode)
    assert mode == 0o600


def test_sm4_sealing_binds_the_payload_to_its_envelope() -> None:
    key = os.urandom(16)
    sealed = sm4_seal(key, b'{"psn_no":"P1"}', b"2207|MSG-1")
    assert sm4_open(key, sealed, b"2207|MSG-1") == b'{"psn_no":"P1"}'
    assert b"P1" not in base64.b64decode(sealed)
    with pytest.raises(UplinkError):
        sm4_open(key, sealed, b"2207|MSG-2")  # moved to another envelope
    with pytest.raises(UplinkError):
        sm4_open(os.urandom(16), sealed, b"2207|MSG-1")
    tampered = bytearray(base64.b64decode(sealed))
    tampered[15] ^= 1
    with pytest.raises(UplinkError):
        sm4_open(key, base64.b64encode(bytes(tampered)).decode(), b"2207|MSG-1")


_P = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF", 16)


def test_both_sides_of_the_key_agreement_derive_the_same_data_key() -> None:
    terminal = Sm2Signer.generate()
    context = agreement_context("430302000000000001")
    ephemeral, key = ephemeral_agreement(terminal.public_hex, context)
    assert len(key) == 16 and on_curve(ephemeral)
    assert terminal.agree(ephemeral, context) == key
    # Bound to the sign-in and to the key pair: another sign_no or another terminal derives another key.
    assert terminal.agree(ephemeral, agreement_context("430302000000000002")) != key
    assert Sm2Signer.generate().agree(ephemeral, context) != key
    # A fresh ephemeral scalar each time: two agreements never share a key.
    assert ephemeral_agreement(terminal.public_hex, context)[1] != key


def _small_x_point(unreduced: bool) -> str:
    """A curve point with a small x (p ≡ 3 mod 4: a square root is one power), x as x + p if asked."""
    a, b = _P - 3, int("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93", 16)
    x = 1
    while True:
        rhs = (x**3 + a * x + b) % _P
        y = pow(rhs, (_P + 1) // 4, _P)
        if y * y % _P == rhs:
            return f"{x + _P if unreduced else x:064x}{y:064x}"
        x += 1


def test_the_small_x_point_is_genuine_so_only_its_unreduced_form_is_refused() -> None:
    assert on_curve(_small_x_point(unreduced=False))


def _off_curve(point: str) -> str:
    x, y = int(point[:64], 16), int(point[64:], 16)
    return f"{x:064x}{(y + 1) % _P:064x}"


@pytest.mark.parametrize(
    "forge", ["off the curve", "x at or above p", "short", "0x prefix", "not hex", "empty"]
)
def test_a_received_point_off_the_curve_is_refused_before_any_multiplication(forge: str) -> None:
    genuine = Sm2Signer.generate().public_hex
    bad = {
        "off the curve": _off_curve(genuine),
        # x + p names the same residue: an unreduced coordinate is refused, not silently reduced.
        "x at or above p": _small_x_point(unreduced=True),
        "short": genuine[:-2],
        "0x prefix": "0x" + genuine[2:],
        "not hex": "g" + genuine[1:],
        "empty": "",
    }[forge]
    assert not on_curve(bad)
    with pytest.raises(UplinkError, match="not on the curve"):
        Sm2Signer.generate().agree(bad, agreement_context("SN"))
    with pytest.raises(UplinkError, match="not on the curve"):
        ephemeral_agreement(bad, agreement_context("SN"))
