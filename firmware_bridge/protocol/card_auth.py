"""Card possession proof: the card's certificate and its answer to the terminal's challenge.

ASSUMPTION to check against real readers (docs/devices.md): a 3rd-generation 社保卡 authenticates with
SM2/SM4 through the reader's PSAM. Ed25519 stands in here so the simulator and the terminal can run the
same shape of protocol:

- each card holds its own key pair and a certificate: the card issuer's signature over
  (card_sn, card_no, certno, card public key);
- READ_CARD_AUTH carries a fresh random challenge from the terminal; the card answers with its record,
  public key, certificate and its signature over (challenge, card_sn).

The terminal verifies offline with the issuer's public key: a replayed answer (another challenge), a
forged certificate or a cloned serial with another key all fail.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from firmware_bridge.protocol.card import (
    CardRecord,
    ProofTag,
    decode_proof_fields,
    encode_card_record,
    encode_proof_fields,
)
from terminal.errors import CardNotGenuineError

CHALLENGE_MIN = 16
CHALLENGE_MAX = 64
CHALLENGE_SIZE = 32  # what the terminal sends
KEY_SIZE = 32
SIGNATURE_SIZE = 64
_CERT_DOMAIN = b"MEDPAY-CARD-CERT-v1\x00"
_AUTH_DOMAIN = b"MEDPAY-CARD-AUTH-v1\x00"


def issuer_key_id(public_raw: bytes) -> str:
    """The id a certificate names its issuer key by (as signing.key_id: 16 hex of sha256)."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def _field(value: bytes) -> bytes:
    # Length-prefixed so no two different field tuples give the same signed bytes.
    return len(value).to_bytes(2, "big") + value


def certificate_body(record: CardRecord, card_key: bytes) -> bytes:
    """The bytes the issuer signs: card_sn, card_no, certno and the card's public key."""
    return _CERT_DOMAIN + b"".join(
        _field(v)
        for v in (record.card_sn.encode(), record.card_no.encode(), record.certno.encode(), card_key)
    )


def auth_body(challenge: bytes, card_sn: str) -> bytes:
    """The bytes the card signs in answer to a challenge."""
    return _AUTH_DOMAIN + _field(challenge) + _field(card_sn.encode())


@dataclass(frozen=True)
class CardProof:
    """What the card sends besides its record: its key, its certificate and its challenge answer."""

    card_key: bytes  # raw 32-byte Ed25519 public key
    issuer_key_id: str
    certificate: bytes  # issuer signature over certificate_body
    response: bytes  # card signature over auth_body(challenge, card_sn)

    def __repr__(self) -> str:
        return f"CardProof(issuer={self.issuer_key_id})"


@dataclass(frozen=True)
class CardReading:
    """One READ_CARD_AUTH answer, with the challenge this host sent (never one echoed by the reader)."""

    record: CardRecord
    proof: CardProof
    challenge: bytes

    def __repr__(self) -> str:
        return f"CardReading({self.record!r}, {self.proof!r})"


@dataclass(frozen=True)
class IssuedCard:
    """A card's secret side as personalised by an issuer (the simulator's slot holds these)."""

    record: CardRecord
    card_private: bytes  # raw 32-byte Ed25519 seed
    issuer_key_id: str
    certificate: bytes

    def answer(self, challenge: bytes) -> CardProof:
        """The chip's answer to a challenge."""
        private = Ed25519PrivateKey.from_private_bytes(self.card_private)
        return CardProof(
            card_key=_raw(private.public_key()),
            issuer_key_id=self.issuer_key_id,
            certificate=self.certificate,
            response=private.sign(auth_body(challenge, self.record.card_sn)),
        )

    def __repr__(self) -> str:
        return f"IssuedCard({self.record!r})"


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def issue_card(record: CardRecord, issuer_private: bytes, card_private: bytes | None = None) -> IssuedCard:
    """Personalise a card: a key pair (new unless given) and the issuer's certificate over it."""
    issuer = Ed25519PrivateKey.from_private_bytes(issuer_private)
    card = (
        Ed25519PrivateKey.from_private_bytes(card_private)
        if card_private is not None
        else Ed25519PrivateKey.generate()
    )
    seed = card.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return IssuedCard(
        record=record,
        card_private=seed,
        issuer_key_id=issuer_key_id(_raw(issuer.public_key())),
        certificate=issuer.sign(certificate_body(record, _raw(card.public_key()))),
    )


def check_challenge(challenge: bytes) -> None:
    """ValueError unless the challenge has a length the protocol allows."""
    if not CHALLENGE_MIN <= len(challenge) <= CHALLENGE_MAX:
        raise ValueError(f"a challenge is {CHALLENGE_MIN}-{CHALLENGE_MAX} bytes, not {len(challenge)}")


def verify_reading(reading: CardReading, challenge: bytes, issuers: Mapping[str, bytes]) -> CardRecord:
    """The card's record when the reading proves possession of an issued card; CardNotGenuineError else.

    `challenge` is the one this terminal sent for this read; `issuers` maps key id → raw public key of
    the card issuers this terminal trusts.
    """
    proof = reading.proof
    if reading.challenge != challenge:
        raise CardNotGenuineError("the card answered another challenge than the one sent (a replay)")
    issuer_raw = issuers.get(proof.issuer_key_id)
    if issuer_raw is None:
        raise CardNotGenuineError(f"card certified by issuer key {proof.issuer_key_id}, which is not trusted")
    if len(proof.card_key) != KEY_SIZE:
        raise CardNotGenuineError("card public key has the wrong size")
    try:
        Ed25519PublicKey.from_public_bytes(issuer_raw).verify(
            proof.certificate, certificate_body(reading.record, proof.card_key)
        )
    except InvalidSignature:
        raise CardNotGenuineError("card certificate does not verify: forged or altered card data") from None
    try:
        Ed25519PublicKey.from_public_bytes(proof.card_key).verify(
            proof.response, auth_body(challenge, reading.record.card_sn)
        )
    except InvalidSignature:
        raise CardNotGenuineError("card did not prove it holds its key (cloned or replayed)") from None
    return reading.record


def encode_answer(card: IssuedCard, challenge: bytes) -> bytes:
    """The DATA of a READ_CARD_AUTH answer (after the status byte): record TLV, then the proof fields."""
    proof = card.answer(challenge)
    return encode_card_record(card.record) + encode_proof_fields(
        proof.card_key, proof.issuer_key_id, proof.certificate, proof.response
    )


def decode_reading(data: bytes, challenge: bytes) -> CardReading:
    """A CardReading from a READ_CARD_AUTH answer's DATA and the challenge this host sent; FrameError."""
    record, fields = decode_proof_fields(data)
    proof = CardProof(
        card_key=fields[ProofTag.CARD_KEY],
        issuer_key_id=fields[ProofTag.ISSUER_KEY_ID].decode("ascii"),
        certificate=fields[ProofTag.CERTIFICATE],
        response=fields[ProofTag.RESPONSE],
    )
    return CardReading(record=record, proof=proof, challenge=challenge)
