"""The checkout session on the real terminal: real models on real images, a real SQLite file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from firmware_bridge.simulate import DEMO_EC_TOKEN
from terminal.app import Terminal, build_terminal
from terminal.config import DEFAULT_CONFIG, load
from terminal.demo_data import DEMO_PEOPLE, SAMPLE_BILL, demo_faces, face_crop, insightface_image, seed_demo
from terminal.domain import CertType, Frame, IdentityClaim
from terminal.errors import AttemptsExhaustedError
from terminal.pipeline.bills import load_bill
from terminal.pipeline.session import State
from terminal.service.wiring import build_session
from terminal.vision.images import load_image
from tests.conftest import FixedClock


def probe_of(terminal: Terminal, index: int) -> Frame:
    """A wider crop of one t1.jpg face than the one enrolled (another capture of the same person)."""
    group = load_image(insightface_image("t1.jpg"))
    box = demo_faces(terminal)[index]
    return Frame(face_crop(group, box, 1.0), "probe", terminal.clock.now())


def stranger() -> Frame:
    """A face nobody enrolled."""
    image = load_image(insightface_image("Tom_Hanks_54745.png"))
    return Frame(image, "stranger", FixedClock().now())


@pytest.mark.usefixtures("require_models")
def test_face_checkout_on_the_real_terminal_settles_once(terminal: Terminal) -> None:
    seed_demo(terminal)
    session = build_session(terminal)
    session.start()
    view = session.identify_face([probe_of(terminal, 2)])
    assert (view["state"], view["result"]) == ("identified", "pass")
    session.load_bill(load_bill(SAMPLE_BILL))
    view = session.confirm()
    assert view["state"] == "settled"
    assert terminal.ledger.is_settled("DEMO-OP-0001")
    assert len(terminal.ledger.pending_outbox()) == 1
    assert view["receipt"]["psn_part_amt"] == "417.76"


@pytest.mark.usefixtures("require_models")
def test_stranger_exhausts_face_then_qr_settles(terminal: Terminal) -> None:
    seed_demo(terminal)
    session = build_session(terminal)
    session.start()
    for _ in range(terminal.config.identity.max_face_attempts):
        view = session.identify_face([stranger()])
        assert view["result"] == "fail"
    assert not view["face_available"] and "qr" in view["methods"]
    with pytest.raises(AttemptsExhaustedError):
        session.identify_face([probe_of(terminal, 0)])
    view = session.identify_credential(IdentityClaim(CertType.EC_TOKEN, DEMO_EC_TOKEN))
    assert view["state"] == "identified"
    attempts = session.diagnostics()["recent_attempts"]
    assert attempts[-1]["method"] == "face" and attempts[-1]["distance"] > 0.5


def test_restart_after_a_crash_between_ledger_and_journal_never_charges_twice(
    data_dir: Path, clock: FixedClock
) -> None:
    config = load(DEFAULT_CONFIG)
    term = build_terminal(config, data_dir, clock)
    for person in DEMO_PEOPLE:
        term.gallery.upsert_person(person)
    session = build_session(term)
    session.identify_credential(IdentityClaim(CertType.ID_NUMBER, DEMO_PEOPLE[2].certno))
    session.load_bill(load_bill(SAMPLE_BILL))
    # The process dies after the ledger committed but before the journal said "settled": replay the
    # ledger write directly, then restart the terminal over the same files.
    priced = term.checkout.price(load_bill(SAMPLE_BILL), DEMO_PEOPLE[2].psn_no)
    from terminal.domain import Match

    term.checkout.settle(priced, Match(DEMO_PEOPLE[2].psn_no, "credential"))
    term.db.execute("UPDATE checkout_sessions SET state = 'confirmed'")
    term.close()

    again = build_terminal(config, data_dir, clock)
    try:
        resumed = build_session(again)
        view = resumed.view()
        assert view["state"] == "settled" and view["receipt"]["recovered"] is True
        assert len(again.ledger.pending_outbox()) == 1
        resumed.finish()
        assert resumed.state is State.IDLE
    finally:
        again.close()


def test_timeout_on_the_real_terminal(terminal: Terminal, clock: FixedClock) -> None:
    session = build_session(terminal, timeout=timedelta(seconds=60))
    session.start()
    clock.at += timedelta(seconds=61)
    assert session.tick()
    assert session.view()["outcome"] == "timeout"
