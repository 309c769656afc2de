"""The root's credential wiring: card verification to a person, trusted issuers, the QR resolver by mode."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware_bridge.protocol.card import CardRecord
from firmware_bridge.protocol.card_auth import CardReading, decode_reading, encode_answer, issue_card
from firmware_bridge.simulate import DEMO_CARD, DEMO_EC_TOKEN, DEMO_ISSUED_CARD
from terminal.app import Terminal, build_terminal
from terminal.config import DEFAULT_CONFIG, TerminalConfig, load
from terminal.demo_data import DEMO_PEOPLE
from terminal.domain import CertType, IdentityClaim
from terminal.errors import CardNotGenuineError, ConfigError, EcTokenError, UnknownPersonError
from terminal.store.keys import create_key
from terminal.uplink.ec_tokens import DemoEcTokenTable, HttpEcTokenResolver
from tests.fakes import FixedClock

LI = DEMO_PEOPLE[0]  # 李建国, whose ID number the demo card carries


def _config(mode: str = "demo", upstream: str | None = None) -> TerminalConfig:
    config = load(DEFAULT_CONFIG)
    return config.model_copy(
        update={
            "terminal": config.terminal.model_copy(update={"mode": mode}),
            "uplink": config.uplink.model_copy(update={"url": upstream}),
        }
    )


def _terminal(tmp_path: Path, mode: str = "demo", upstream: str | None = None) -> Terminal:
    create_key(tmp_path)
    terminal = build_terminal(_config(mode, upstream), tmp_path, FixedClock())
    terminal.gallery.upsert_person(LI)
    return terminal


def _demo_reading(challenge: bytes) -> CardReading:
    return decode_reading(encode_answer(DEMO_ISSUED_CARD, challenge), challenge)


def test_a_genuine_card_identifies_its_person_by_certno(tmp_path: Path) -> None:
    terminal = _terminal(tmp_path)
    challenge = secrets.token_bytes(32)
    claim = terminal.verify_card(_demo_reading(challenge), challenge)
    assert claim == IdentityClaim(
        CertType.SOCIAL_SECURITY_CARD, DEMO_CARD.card_no, psn_no=LI.psn_no, card_sn=DEMO_CARD.card_sn
    )
    terminal.close()


def test_a_card_linked_to_someone_else_than_its_certified_id_number_is_refused(tmp_path: Path) -> None:
    terminal = _terminal(tmp_path)
    other = DEMO_PEOPLE[1]
    terminal.gallery.upsert_person(other)
    terminal.gallery.link_credential(CertType.SOCIAL_SECURITY_CARD, DEMO_CARD.card_no, other.psn_no)
    challenge = secrets.token_bytes(32)
    with pytest.raises(UnknownPersonError):
        terminal.verify_card(_demo_reading(challenge), challenge)
    terminal.close()


def test_a_replayed_or_uncertified_card_never_reaches_the_gallery(tmp_path: Path) -> None:
    terminal = _terminal(tmp_path)
    old, fresh = secrets.token_bytes(32), secrets.token_bytes(32)
    with pytest.raises(CardNotGenuineError):
        terminal.verify_card(_demo_reading(old), fresh)
    rogue = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    forged = issue_card(DEMO_CARD, rogue)
    with pytest.raises(CardNotGenuineError):
        terminal.verify_card(decode_reading(encode_answer(forged, fresh), fresh), fresh)
    terminal.close()


def test_a_genuine_card_of_an_unknown_person_is_unknown(tmp_path: Path) -> None:
    terminal = _terminal(tmp_path)
    dev = DEMO_ISSUED_CARD
    stranger = CardRecord(
        "H43030299", "430302D156000005A1B2C3D4E5F60199", "路人", "11010519491231002X", "430302"
    )
    # Certified by the same (development) issuer: the card is genuine, the person is not enrolled here.
    from devkit.sign import DEV_KEY

    key = serialization.load_pem_private_key(DEV_KEY.read_bytes(), None)
    assert isinstance(key, Ed25519PrivateKey) and dev.issuer_key_id == "ac843185968c4980"
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    card = issue_card(stranger, seed)
    challenge = secrets.token_bytes(32)
    with pytest.raises(UnknownPersonError):
        terminal.verify_card(decode_reading(encode_answer(card, challenge), challenge), challenge)
    terminal.close()


def test_production_refuses_the_development_card_issuer(tmp_path: Path) -> None:
    terminal = _terminal(tmp_path, mode="production")
    with pytest.raises(ConfigError, match="card issuers"):
        _ = terminal.card_issuers
    terminal.close()


def test_qr_tokens_resolve_online_with_an_upstream_else_by_the_demo_table_only_in_demo(
    tmp_path: Path,
) -> None:
    online = _terminal(tmp_path / "a", upstream="http://127.0.0.1:9")
    assert isinstance(online.ec_tokens, HttpEcTokenResolver)
    online.close()
    demo = _terminal(tmp_path / "b")
    assert isinstance(demo.ec_tokens, DemoEcTokenTable)
    demo.gallery.link_credential(CertType.EC_TOKEN, DEMO_EC_TOKEN, LI.psn_no)
    assert demo.ec_tokens.resolve(DEMO_EC_TOKEN).psn_no == LI.psn_no
    with pytest.raises(EcTokenError):
        demo.ec_tokens.resolve("430302EC" + "9" * 32)
    demo.close()
    production = _terminal(tmp_path / "c", mode="production")
    assert production.ec_tokens is None  # QR is not offered
    with pytest.raises(ConfigError):
        DemoEcTokenTable(production.gallery, "production")
    production.close()
