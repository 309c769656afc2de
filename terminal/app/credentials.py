"""Credentials that prove possession, at the root: a card reading verified and resolved to a person.

The trusted issuers are Terminal.card_issuers; the QR side lives in terminal/uplink/ec_tokens.py
(Terminal.ec_tokens); typed ID numbers only name whom to verify by face (terminal/id_numbers.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from firmware_bridge.protocol.card_auth import CardReading, verify_reading
from terminal.domain import CertType, IdentityClaim
from terminal.errors import UnknownPersonError
from terminal.ports import Gallery


def verify_card(
    reading: CardReading, challenge: bytes, issuers: Mapping[str, bytes], gallery: Gallery
) -> IdentityClaim:
    """The proven card claim (psn_no set) for a reading of `challenge`, the one this terminal just sent.

    CardNotGenuineError when the card does not prove possession; UnknownPersonError when the card is
    genuine but names nobody this terminal knows (by its linked card number, else its certno).
    """
    record = verify_reading(reading, challenge, issuers)
    try:
        person = gallery.person_by_claim(record.claim())
    except UnknownPersonError:
        person = gallery.person_by_claim(IdentityClaim(CertType.ID_NUMBER, record.certno))
    if person.certno.upper() != record.certno.upper():
        # The issuer certified this card for another ID number than the person it is linked to here.
        raise UnknownPersonError("the card's certified ID number differs from the linked person's")
    return IdentityClaim(
        CertType.SOCIAL_SECURITY_CARD, record.card_no, psn_no=person.psn_no, card_sn=record.card_sn
    )
