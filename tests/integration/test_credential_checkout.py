"""Checkout without a face: the simulated card and QR readers identify the patient, the bill settles."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from firmware_bridge.readers import CardReader, QrReader
from firmware_bridge.simulate import DEMO_CARD, DEMO_EC_TOKEN, CardSimulator, LineDeviceSimulator, TcpEndpoint
from terminal.app import Terminal
from terminal.bill_json import load_bill
from terminal.demo_data import DEMO_PEOPLE, SAMPLE_BILL, link_demo_credentials
from terminal.domain import CertType, IdentityClaim
from terminal.errors import UnknownPersonError

WAIT = 10.0


@pytest.fixture
def tcp() -> Iterator[TcpEndpoint]:
    """A simulator endpoint on a loopback port."""
    endpoint = TcpEndpoint()
    endpoint.start()
    yield endpoint
    endpoint.stop()


@pytest.fixture
def known_people(terminal: Terminal) -> Terminal:
    """The demo people's insurance data and their linked card and QR credentials (no faces)."""
    for person in DEMO_PEOPLE:
        terminal.gallery.upsert_person(person)
    link_demo_credentials(terminal)
    return terminal


def test_card_reader_claim_identifies_and_settles(known_people: Terminal, tcp: TcpEndpoint) -> None:
    card = CardSimulator(tcp)
    with CardReader(tcp.url, clock=known_people.clock) as reader:
        assert reader.wait_connected(WAIT)
        card.insert(DEMO_CARD)
        claim = reader.poll(WAIT)
    assert claim is not None and claim.mdtrt_cert_type is CertType.SOCIAL_SECURITY_CARD
    match = known_people.identifier.by_credential(claim)
    assert match.psn_no == DEMO_PEOPLE[0].psn_no and match.method == "credential"
    priced = known_people.checkout.price(load_bill(SAMPLE_BILL), match.psn_no)
    record = known_people.checkout.settle(priced, match)
    assert known_people.ledger.settlement(record.msgid)["identified_by"] == "credential"


def test_qr_reader_claim_identifies_the_linked_person(known_people: Terminal, tcp: TcpEndpoint) -> None:
    scanner = LineDeviceSimulator(tcp)
    with QrReader(tcp.url, clock=known_people.clock) as reader:
        assert tcp.wait_client(WAIT)
        scanner.scan(DEMO_EC_TOKEN)
        claim = reader.poll(WAIT)
    assert claim == IdentityClaim(CertType.EC_TOKEN, DEMO_EC_TOKEN)
    assert known_people.identifier.by_credential(claim).psn_no == DEMO_PEOPLE[0].psn_no


def test_an_unlinked_card_is_not_guessed(known_people: Terminal) -> None:
    claim = IdentityClaim(CertType.SOCIAL_SECURITY_CARD, "H99999999", card_sn="0" * 32)
    with pytest.raises(UnknownPersonError):
        known_people.identifier.by_credential(claim)
