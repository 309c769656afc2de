"""The checkout session's flow with fakes at its ports: states, receipts, timeouts, restarts, crashes."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from terminal.bill_json import load_bill
from terminal.demo_data import SAMPLE_BILL
from terminal.domain import CertType, Frame, IdentityClaim, Match
from terminal.errors import IdentityError, SettlementError
from terminal.pipeline.identify import claim_from_input
from terminal.pipeline.session import SessionStateError
from terminal.pipeline.session_state import State
from terminal.store.sessions import SessionJournal
from tests.integration.session_rig import (
    PERSON,
    Crash,
    FakeLiveness,
    Rig,
    confirm,
    face,
    frame,
    load_sample,
    proven,
)


def test_face_checkout_goes_through_every_state_to_a_receipt(rig: Rig) -> None:
    session = rig.session()
    assert session.state is State.IDLE
    assert session.start()["state"] == "identifying"
    view = face(session, PERSON.psn_no)
    assert (view["state"], view["result"], view["prompt"]) == ("identified", "pass", "choose_bill")
    view = load_sample(session)
    assert view["state"] == "priced"
    assert view["bill"]["totals"]["psn_part_amt"] == "417.76"
    assert {line["cls"] for line in view["bill"]["lines"]} == {"甲", "乙", "丙"}
    view = confirm(session)
    assert view["state"] == "settled" and view["receipt"]["psn_part_amt"] == "417.76"
    assert view["receipt"]["offline"] is False
    assert list(rig.ledger.records) == ["DEMO-OP-0001"]
    assert session.finish()["state"] == "idle"
    events = [e["event"] for e in SessionJournal(rig.db).events(view["session_id"])]
    assert events == [
        "start",
        "face_start",
        "face_begin",
        "identified",
        "priced",
        "confirm",
        "settled",
        "done",
    ]


def test_patient_view_never_carries_a_score(rig: Rig) -> None:
    session = rig.session()
    session.start()
    text = json.dumps(face(session, "stranger")) + json.dumps(face(session, PERSON.psn_no))
    assert "distance" not in text and "0.9" not in text and "score" not in text
    assert session.diagnostics()["recent_attempts"][1]["distance"] == 0.9, "the technician sees it"


def test_without_a_liveness_check_face_is_not_offered(rig: Rig) -> None:
    session = rig.session(liveness=None)
    view = session.start()
    assert "face" not in view["methods"] and not view["face_available"]
    assert {"qr", "card"} <= set(view["methods"])
    assert "id" not in view["methods"], "a typed ID needs the face check it names the person for"
    with pytest.raises(IdentityError):
        face(session, PERSON.psn_no)
    assert session.diagnostics()["liveness"].startswith("not configured: face is not offered")


def test_identity_frames_must_name_the_same_person(rig: Rig) -> None:
    class Swapped(FakeLiveness):
        def identity_frames(self) -> tuple[Frame, ...]:
            return (frame(PERSON.psn_no), frame(PERSON.psn_no), frame("stranger"))

    session = rig.session(liveness=Swapped)
    view = face(session, PERSON.psn_no)
    assert (view["state"], view["result"], view["face_attempts_left"]) == ("identifying", "fail", 2)


def test_the_challenge_frames_are_never_embedded_and_the_decision_embeds_three(rig: Rig) -> None:
    session = rig.session()
    session.start()
    for _ in range(5):
        assert face(session, "none")["face_checking"]
    assert rig.faces.embedded == 0, "the per-frame challenge path must not run the embedder"
    assert face(session, PERSON.psn_no)["state"] == "identified"
    assert rig.faces.embedded == 3 and rig.identifier.calls == 1, "one decision on three frames"


def test_fewer_usable_frames_than_the_decision_needs_fail_with_a_reason(rig: Rig) -> None:
    class Gapped(FakeLiveness):
        def identity_frames(self) -> tuple[Frame, ...]:
            return (frame(PERSON.psn_no), frame("none"), frame(PERSON.psn_no))

    session = rig.session(liveness=Gapped)
    view = face(session, PERSON.psn_no)
    assert (view["state"], view["result"], view["prompt"]) == ("identifying", "fail", "face_retry")
    attempt = session.diagnostics()["recent_attempts"][0]
    assert attempt["reason"] == "only 2 of 3 frames had a usable face" and attempt["liveness"] == "pass"
    assert rig.identifier.calls == 0, "no decision rests on fewer frames than configured"


def test_a_masked_face_is_asked_to_lower_the_mask(rig: Rig) -> None:
    class Masked(FakeLiveness):
        def identity_frames(self) -> tuple[Frame, ...]:
            return (frame("masked"),) * 5

    session = rig.session(liveness=Masked)
    view = face(session, PERSON.psn_no)
    assert (view["state"], view["result"], view["prompt"]) == ("identifying", "fail", "lower_mask")
    assert "mask" in session.diagnostics()["recent_attempts"][0]["reason"]


def test_a_configured_single_frame_decision_needs_one_usable_frame(rig: Rig) -> None:
    class Gapped(FakeLiveness):
        def identity_frames(self) -> tuple[Frame, ...]:
            return (frame("none"), frame(PERSON.psn_no), frame("none"))

    session = rig.session(liveness=Gapped, decision_frames=1)
    assert face(session, PERSON.psn_no)["state"] == "identified"


def test_a_refused_settle_returns_to_the_estimate_instead_of_sticking(rig: Rig) -> None:
    session = rig.session()
    face(session, PERSON.psn_no)
    load_sample(session)
    rig.checkout.crash = "refuse"
    with pytest.raises(SettlementError):
        confirm(session)
    view = session.view()
    assert (view["state"], view["prompt"]) == ("priced", "confirm_again")
    assert rig.ledger.records == {}
    assert confirm(session)["state"] == "settled" and len(rig.ledger.records) == 1


def test_bill_loaded_before_identification_is_priced_on_identification(rig: Rig) -> None:
    session = rig.session()
    session.start()
    assert load_sample(session)["state"] == "identifying"
    view = session.identify_credential(proven())
    assert view["state"] == "priced"


@pytest.mark.parametrize("steps", [0, 1, 2])
def test_cancel_from_every_state_returns_to_idle_without_charging(rig: Rig, steps: int) -> None:
    session = rig.session()
    session.start()
    if steps >= 1:
        face(session, PERSON.psn_no)
    if steps >= 2:
        load_sample(session)
    view = session.cancel()
    assert (view["state"], view["outcome"]) == ("idle", "cancelled")
    assert rig.ledger.records == {}


@pytest.mark.parametrize("steps", [0, 1, 2])
def test_timeout_from_every_state_on_the_injected_clock(rig: Rig, steps: int) -> None:
    session = rig.session()
    session.start()
    if steps >= 1:
        face(session, PERSON.psn_no)
    if steps >= 2:
        load_sample(session)
    rig.clock.at += timedelta(seconds=119)
    assert not session.tick()
    rig.clock.at += timedelta(seconds=2)
    assert session.tick()
    assert (session.view()["state"], session.view()["outcome"]) == ("idle", "timeout")
    assert rig.ledger.records == {}


def test_receipt_screen_times_out_back_to_idle(rig: Rig) -> None:
    session = rig.session()
    face(session, PERSON.psn_no)
    load_sample(session)
    confirm(session)
    rig.clock.at += timedelta(minutes=5)
    assert session.tick() and session.state is State.IDLE


def test_confirm_before_pricing_is_refused(rig: Rig) -> None:
    session = rig.session()
    session.start()
    with pytest.raises(SessionStateError):
        session.confirm(session.session_id, "DEMO-OP-0001", "0" * 32)


def test_one_session_per_terminal(rig: Rig) -> None:
    session = rig.session()
    face(session, PERSON.psn_no)
    with pytest.raises(SessionStateError):
        session.start()


def test_restart_resumes_a_priced_session(rig: Rig) -> None:
    first = rig.session()
    face(first, PERSON.psn_no)
    sid = load_sample(first)["session_id"]
    rig.restart()
    second = rig.session()
    view = second.view()
    assert (view["session_id"], view["state"]) == (sid, "priced")
    assert confirm(second)["state"] == "settled"


def test_crash_after_the_ledger_write_is_never_charged_twice(rig: Rig) -> None:
    first = rig.session()
    face(first, PERSON.psn_no)
    load_sample(first)
    rig.checkout.crash = "after"
    with pytest.raises(Crash):
        confirm(first)
    rig.checkout.crash = None
    rig.restart()
    second = rig.session()
    view = second.view()
    assert view["state"] == "settled" and view["receipt"]["recovered"] is True
    assert len(rig.ledger.records) == 1
    with pytest.raises(SessionStateError):
        second.confirm(view["session_id"], "DEMO-OP-0001", "0" * 32)
    assert len(rig.ledger.records) == 1


def test_crash_before_the_ledger_write_asks_the_patient_again(rig: Rig) -> None:
    first = rig.session()
    face(first, PERSON.psn_no)
    load_sample(first)
    rig.checkout.crash = "before"
    with pytest.raises(Crash):
        confirm(first)
    rig.checkout.crash = None
    rig.restart()
    second = rig.session()
    assert (second.state, second.view()["prompt"]) == (State.PRICED, "confirm_again")
    confirm(second)
    assert len(rig.ledger.records) == 1


def test_a_bill_settled_elsewhere_is_not_charged_again_on_confirm(rig: Rig) -> None:
    session = rig.session()
    face(session, PERSON.psn_no)
    bill = load_bill(SAMPLE_BILL)
    session.load_bill(bill, session.session_id)
    other = rig.checkout.inner
    other.settle(other.price(replace(bill), PERSON.psn_no), Match(PERSON.psn_no, "credential"))
    view = confirm(session)
    assert view["state"] == "settled" and len(rig.ledger.records) == 1


@pytest.mark.parametrize(
    ("method", "value", "cert"),
    [("qr", "TOKEN1", CertType.EC_TOKEN), ("card", "C1", CertType.SOCIAL_SECURITY_CARD)],
)
def test_claim_from_input(method: str, value: str, cert: CertType) -> None:
    assert claim_from_input(method, f" {value} ") == IdentityClaim(cert, value)


def test_an_offline_settlement_says_so_on_the_receipt(rig: Rig) -> None:
    session = rig.session()
    face(session, PERSON.psn_no)
    load_sample(session)
    rig.checkout.crash = "offline"
    assert confirm(session)["receipt"]["offline"] is True


def test_an_error_after_the_ledger_committed_shows_the_receipt_instead_of_failing(rig: Rig) -> None:
    session = rig.session()
    face(session, PERSON.psn_no)
    load_sample(session)
    rig.checkout.crash = "error_after"
    view = confirm(session)
    assert view["state"] == "settled" and view["receipt"]["recovered"] is True
    assert len(rig.ledger.records) == 1
