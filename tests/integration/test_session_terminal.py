"""The checkout session on the real terminal: real models on real images, a real SQLite file."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from firmware_bridge.simulate import DEMO_EC_TOKEN
from terminal.app import Terminal, build_session, build_terminal
from terminal.bill_json import load_bill
from terminal.config import DEFAULT_CONFIG, load
from terminal.demo_data import DEMO_PEOPLE, SAMPLE_BILL, seed_demo
from terminal.domain import CertType, Frame, IdentityClaim
from terminal.errors import AttemptsExhaustedError
from terminal.pipeline.session import Session
from terminal.pipeline.session_state import State
from terminal.vision.liveness.sources import SensorFrame
from terminal.vision.metric import accepts
from tests.fakes import FixedClock
from tests.presenting import demo_presenter, follow_prompts


def capture(terminal: Terminal, session: Session) -> Callable[[NDArray[np.uint8]], dict[str, Any]]:
    """Feed one camera image to the session's face path (as the capture loop does; tapping face first)."""

    def send(image: NDArray[np.uint8]) -> dict[str, Any]:
        if not session.wants_frames():
            session.begin_face()
        return session.face_frame(SensorFrame(Frame(image, "camera", terminal.clock.now())))

    return send


@pytest.mark.usefixtures("require_models")
def test_face_checkout_on_the_real_terminal_settles_once(terminal: Terminal, clock: FixedClock) -> None:
    seed_demo(terminal)
    session = build_session(terminal)
    session.start()
    view = follow_prompts(capture(terminal, session), demo_presenter(terminal, 2), clock)
    assert (view["state"], view["result"]) == ("identified", "pass")
    assert session.diagnostics()["recent_attempts"][0]["method"] == "face-1:N"
    view = session.load_bill(load_bill(SAMPLE_BILL), session.session_id)
    view = session.confirm(view["session_id"], view["bill"]["chrg_bchno"], view["amounts_digest"])
    assert view["state"] == "settled"
    assert terminal.ledger.is_settled("DEMO-OP-0001")
    assert len(terminal.ledger.pending_outbox()) == 1
    assert view["receipt"]["psn_part_amt"] == "417.76"


@pytest.mark.usefixtures("require_models")
def test_a_held_up_photo_of_an_enrolled_person_never_identifies(
    terminal: Terminal, clock: FixedClock
) -> None:
    seed_demo(terminal)
    session = build_session(terminal)
    session.start()
    photo = demo_presenter(terminal, 2, kind="photo")
    for _ in range(terminal.config.identity.max_face_attempts):
        view = follow_prompts(capture(terminal, session), photo, clock)
        assert (view["state"], view["result"]) == ("identifying", "fail")
    assert not view["face_available"] and view["prompt"] == "face_exhausted"
    assert all(a["liveness"] == "fail" for a in session.diagnostics()["recent_attempts"])


@pytest.mark.usefixtures("require_models")
def test_a_withdrawn_face_exhausts_face_then_qr_settles(terminal: Terminal, clock: FixedClock) -> None:
    people = seed_demo(terminal)
    # 张伟 withdrew his consent: his face is gone from the gallery, so live he is a stranger now.
    terminal.gallery.withdraw_consent(people[2].psn_no, "test")
    session = build_session(terminal)
    session.start()
    for _ in range(terminal.config.identity.max_face_attempts):
        view = follow_prompts(capture(terminal, session), demo_presenter(terminal, 2), clock)
        assert view["result"] == "fail"
    assert not view["face_available"] and "qr" in view["methods"]
    with pytest.raises(AttemptsExhaustedError):
        capture(terminal, session)(demo_presenter(terminal, 0).capture(None))
    claim = IdentityClaim(CertType.EC_TOKEN, DEMO_EC_TOKEN, psn_no=DEMO_PEOPLE[0].psn_no)
    view = session.identify_credential(claim)  # as the QR reader hands it over once proven
    assert view["state"] == "identified"
    attempts = session.diagnostics()["recent_attempts"]
    # The stranger was live (liveness passed) and matched nobody.
    point = terminal.operating_point
    assert attempts[-1]["liveness"] == "pass"
    assert not accepts(attempts[-1]["distance"], point.threshold, point.metric)


def test_restart_after_a_crash_between_ledger_and_journal_never_charges_twice(
    data_dir: Path, clock: FixedClock
) -> None:
    config = load(DEFAULT_CONFIG)
    term = build_terminal(config, data_dir, clock)
    for person in DEMO_PEOPLE:
        term.gallery.upsert_person(person)
    session = build_session(term)
    session.identify_credential(
        IdentityClaim(CertType.SOCIAL_SECURITY_CARD, "card", psn_no=DEMO_PEOPLE[2].psn_no)
    )
    session.load_bill(load_bill(SAMPLE_BILL), session.session_id)
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
