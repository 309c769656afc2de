"""Card possession proof: certificates, challenge answers, and what a forger or a cloner meets."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devkit.sign import DEV_KEY, DEV_PUBLIC
from firmware_bridge.protocol.card import CardRecord, ProofTag, encode_card_record, encode_proof_fields
from firmware_bridge.protocol.card_auth import (
    CardReading,
    IssuedCard,
    check_challenge,
    decode_reading,
    encode_answer,
    issue_card,
    verify_reading,
)
from firmware_bridge.simulate import DEMO_CARD, DEMO_ISSUED_CARD
from terminal.errors import CardNotGenuineError, FrameError


def _seed(private: Ed25519PrivateKey) -> bytes:
    return private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def _public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


ISSUER = Ed25519PrivateKey.generate()
ISSUERS = {hashlib.sha256(_public(ISSUER)).hexdigest()[:16]: _public(ISSUER)}
CARD = CardRecord("H43030202", "430302D156000005A1B2C3D4E5F60102", "王秀兰", "430302196207250020", "430302")


def _read(card: IssuedCard, challenge: bytes) -> CardReading:
    """What the host decodes from the card's answer over the wire."""
    return decode_reading(encode_answer(card, challenge), challenge)


def test_an_issued_card_answering_a_fresh_challenge_verifies() -> None:
    card = issue_card(CARD, _seed(ISSUER))
    challenge = secrets.token_bytes(32)
    assert verify_reading(_read(card, challenge), challenge, ISSUERS) == CARD


def test_the_demo_card_is_certified_by_the_development_issuer_key() -> None:
    dev = json.loads(DEV_PUBLIC.read_text(encoding="utf-8"))["keys"][0]
    issuers = {dev["key_id"]: base64.b64decode(dev["public_key"])}
    challenge = secrets.token_bytes(32)
    assert verify_reading(_read(DEMO_ISSUED_CARD, challenge), challenge, issuers) == DEMO_CARD
    # And the constant is what the development key issues for that card key today.
    dev_key = serialization.load_pem_private_key(DEV_KEY.read_bytes(), None)
    assert isinstance(dev_key, Ed25519PrivateKey)
    dev_seed = _seed(dev_key)
    again = issue_card(DEMO_CARD, dev_seed, DEMO_ISSUED_CARD.card_private)
    assert again == DEMO_ISSUED_CARD


def test_a_replayed_answer_to_an_old_challenge_is_refused() -> None:
    card = issue_card(CARD, _seed(ISSUER))
    old, fresh = secrets.token_bytes(32), secrets.token_bytes(32)
    recorded = _read(card, old)
    with pytest.raises(CardNotGenuineError, match="replay"):
        verify_reading(recorded, fresh, ISSUERS)
    # A reader that also relabels the old answer with the fresh challenge meets the card signature.
    relabelled = CardReading(recorded.record, recorded.proof, fresh)
    with pytest.raises(CardNotGenuineError, match="did not prove"):
        verify_reading(relabelled, fresh, ISSUERS)


def test_a_forged_certificate_is_refused() -> None:
    forger = Ed25519PrivateKey.generate()
    forged = issue_card(CARD, _seed(forger))
    claiming_trusted_issuer = IssuedCard(
        forged.record, forged.card_private, next(iter(ISSUERS)), forged.certificate
    )
    challenge = secrets.token_bytes(32)
    with pytest.raises(CardNotGenuineError, match="certificate"):
        verify_reading(_read(claiming_trusted_issuer, challenge), challenge, ISSUERS)


def test_altered_card_data_breaks_the_certificate() -> None:
    genuine = issue_card(CARD, _seed(ISSUER))
    other_person = CardRecord(CARD.card_no, CARD.card_sn, CARD.name, "11010519491231002X", CARD.admdvs)
    altered = IssuedCard(other_person, genuine.card_private, genuine.issuer_key_id, genuine.certificate)
    challenge = secrets.token_bytes(32)
    with pytest.raises(CardNotGenuineError, match="certificate"):
        verify_reading(_read(altered, challenge), challenge, ISSUERS)


def test_a_cloned_serial_with_another_key_is_refused() -> None:
    genuine = issue_card(CARD, _seed(ISSUER))
    clone = IssuedCard(CARD, _seed(Ed25519PrivateKey.generate()), genuine.issuer_key_id, genuine.certificate)
    challenge = secrets.token_bytes(32)
    reading = _read(clone, challenge)
    # The clone may copy the genuine public key too: it still cannot sign the challenge with it.
    copied_key = CardReading(
        reading.record,
        type(reading.proof)(
            _read(genuine, challenge).proof.card_key,
            reading.proof.issuer_key_id,
            reading.proof.certificate,
            reading.proof.response,
        ),
        challenge,
    )
    for attempt in (reading, copied_key):
        with pytest.raises(CardNotGenuineError):
            verify_reading(attempt, challenge, ISSUERS)


def test_a_card_from_an_untrusted_issuer_is_refused() -> None:
    card = issue_card(CARD, _seed(Ed25519PrivateKey.generate()))
    challenge = secrets.token_bytes(32)
    with pytest.raises(CardNotGenuineError, match="not trusted"):
        verify_reading(_read(card, challenge), challenge, ISSUERS)


@pytest.mark.parametrize("size", [0, 15, 65])
def test_challenge_length_is_bounded(size: int) -> None:
    with pytest.raises(ValueError):
        check_challenge(bytes(size))


@pytest.mark.parametrize(
    ("proof", "message"),
    [
        (b"", "lacks CARD_KEY"),
        (encode_proof_fields(bytes(31), "0" * 16, bytes(64), bytes(64)), "CARD_KEY is 31 bytes"),
        (encode_proof_fields(bytes(32), "XYZ", bytes(64), bytes(64)), "16 hex"),
        (encode_proof_fields(bytes(32), "0" * 16, bytes(64), bytes(63)), "RESPONSE is 63 bytes"),
    ],
)
def test_malformed_answers_are_frame_errors(proof: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        decode_reading(encode_card_record(CARD) + proof, bytes(32))


def test_proof_tags_do_not_collide_with_record_tags() -> None:
    assert {int(t) for t in ProofTag}.isdisjoint(range(0x01, 0x06))
