"""Attempts count when they start, per checkout and terminal-wide; a typed ID only names whom face checks."""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta

import pytest

from terminal.domain import CertType, IdentityClaim
from terminal.errors import (
    AttemptsExhaustedError,
    CredentialAttemptsError,
    FacePausedError,
    IdentityError,
)
from terminal.id_numbers import with_check_digit
from terminal.pipeline.attempt_limits import PauseRule
from terminal.pipeline.identify import claim_from_input
from terminal.pipeline.session import SessionStateError
from tests.integration.session_rig import PERSON, Rig, face, load_sample, proven

STRANGER_ID = "110101199003070003"


def test_face_path_ends_after_three_failures_and_credentials_stay_offered(rig: Rig) -> None:
    session = rig.session()
    session.start()
    for left in (2, 1, 0):
        view = face(session, "stranger")
        assert view["result"] == "fail" and view["face_attempts_left"] == left
        assert {"qr", "card", "id"} <= set(view["methods"])
    assert view["prompt"] == "face_exhausted" and not view["face_available"]
    assert "face" not in view["methods"]
    calls = rig.identifier.calls
    with pytest.raises(AttemptsExhaustedError):
        face(session, PERSON.psn_no)
    assert rig.identifier.calls == calls, "an exhausted face path compares nothing"
    view = session.identify_credential(proven(CertType.SOCIAL_SECURITY_CARD, "CARD"))
    assert view["state"] == "identified"


def test_an_attempt_counts_from_its_first_frame(rig: Rig) -> None:
    session = rig.session()
    session.start()
    assert session.begin_face()["face_attempts_left"] == 3, "a tap alone spends nothing"
    view = face(session, "none")
    assert (view["prompt"], view["challenge"], view["face_attempts_left"]) == ("face_check", "no_face", 2)
    assert view["face_checking"] and view["state"] == "identifying"


@pytest.mark.parametrize("how", ["cancel", "timeout", "restart"])
def test_an_abandoned_attempt_is_a_failure(rig: Rig, how: str) -> None:
    session = rig.session(rule=PauseRule(failures=2))
    for _ in range(2):
        session.start()
        face(session, "none")  # the challenge is running
        if how == "cancel":
            session.cancel()
        elif how == "timeout":
            rig.clock.at += timedelta(seconds=121)
            assert session.tick()
        else:
            # A new start ends the running attempt as failed (the second one fills the window).
            with contextlib.suppress(FacePausedError):
                session.begin_face()
            session.cancel()
    view = session.start()
    assert view["face_paused_until"] is not None and not view["face_available"]
    with pytest.raises(FacePausedError):
        session.begin_face()


def test_forty_cancelled_attempts_do_not_give_forty_challenges(rig: Rig) -> None:
    session = rig.session()
    challenges = 0
    for _ in range(40):
        session.start()
        try:
            face(session, "none")
            challenges += 1
        except AttemptsExhaustedError:
            pass
        session.cancel()
    assert challenges == PauseRule().failures, "the terminal-wide window stops a redraw loop"
    assert session.start()["face_paused_until"] is not None


def test_one_patients_failures_do_not_show_for_the_next_patient(rig: Rig) -> None:
    session = rig.session()
    session.start()
    face(session, "photo")
    session.cancel()
    assert session.start()["face_attempts_left"] == 3


def test_the_pause_runs_out_and_a_technician_can_lift_it(rig: Rig) -> None:
    rule = PauseRule(failures=2, window=timedelta(minutes=10), pause=timedelta(minutes=10))
    session = rig.session(rule=rule)
    session.start()
    face(session, "photo")
    face(session, "photo")
    view = session.view()
    assert view["prompt"] == "face_paused" and view["face_paused_until"] is not None
    assert {"qr", "card"} <= set(view["methods"]) and "face" not in view["methods"]
    rig.clock.at += timedelta(minutes=10)
    assert session.view()["face_available"]
    face(session, "photo")
    face(session, "photo")
    assert not session.view()["face_available"]
    session.limits.reset()
    assert session.view()["face_available"]
    assert face(session, PERSON.psn_no)["state"] == "identified"


def test_failed_liveness_counts_as_a_failed_face_attempt(rig: Rig) -> None:
    session = rig.session()
    session.start()
    calls = rig.identifier.calls
    view = face(session, "photo")
    assert view["result"] == "fail" and view["face_attempts_left"] == 2
    assert rig.identifier.calls == calls, "a failed liveness attempt compares nobody"
    attempt = session.diagnostics()["recent_attempts"][0]
    assert attempt["liveness"] == "fail" and attempt["scores"] == {"parallax": 0.01}
    assert "parallax" not in json.dumps(view), "the patient sees pass/fail only"


def test_a_typed_id_alone_identifies_nobody(rig: Rig) -> None:
    session = rig.session()
    session.start()
    view = session.identify_credential(claim_from_input("id", PERSON.certno))
    assert (view["state"], view["prompt"]) == ("identifying", "face_verify")
    assert view["verify_claim"] == PERSON.certno[:4] + "*" * 10 + PERSON.certno[-4:]
    assert session.psn_no is None
    with pytest.raises(SessionStateError):
        session.confirm(session.session_id, "x", "y")
    assert load_sample(session)["state"] == "identifying", "a bill waits; nothing is priced"
    view = face(session, "stranger")
    assert (view["state"], view["result"]) == ("identifying", "fail"), "the 1:1 check must pass"
    assert face(session, PERSON.psn_no)["state"] == "priced"
    assert session.psn_no == PERSON.psn_no


def test_an_unknown_typed_id_looks_the_same_and_then_fails_the_face_check(rig: Rig) -> None:
    session = rig.session()
    session.start()
    known = session.identify_credential(claim_from_input("id", PERSON.certno))
    session.cancel()
    session.start()
    unknown = session.identify_credential(IdentityClaim(CertType.ID_NUMBER, STRANGER_ID))
    assert (unknown["prompt"], unknown["state"]) == (known["prompt"], known["state"])
    view = face(session, PERSON.psn_no)
    assert (view["state"], view["result"]) == ("identifying", "fail")
    assert session.diagnostics()["recent_attempts"][0]["reason"] == "typed ID number is not enrolled"


def test_fifteen_wrong_id_numbers_meet_the_limit(rig: Rig) -> None:
    session = rig.session()
    session.start()
    refused = 0
    for n in range(15):
        try:
            session.identify_credential(claim_from_input("id", with_check_digit(f"11010119900301{n:03d}")))
        except CredentialAttemptsError:
            refused += 1
    assert refused == 10 and session.view()["prompt"] == "credential_exhausted"
    assert session.limits.state()["failures_in_window"] == 5, "wrong numbers count terminal-wide"
    session.cancel()
    session.start()
    for n in range(5):
        session.identify_credential(claim_from_input("id", with_check_digit(f"11010119900302{n:03d}")))
    assert session.limits.paused_until() is not None, "a new checkout meets the terminal-wide window"
    assert not session.view()["face_available"]
    with pytest.raises(FacePausedError):
        session.begin_face()


def test_a_qr_or_card_claim_must_come_proven(rig: Rig) -> None:
    session = rig.session()
    session.start()
    with pytest.raises(IdentityError, match="read and verified"):
        session.identify_credential(IdentityClaim(CertType.EC_TOKEN, "QR-TOKEN"))
    view = session.credential_refused("qr", "token already used")
    assert (view["state"], view["result"], view["prompt"]) == ("identifying", "fail", "credential_refused")
    assert session.limits.state()["failures_in_window"] == 1


def test_claim_from_input_checks_the_id_number_shape() -> None:
    assert claim_from_input("id", "43030219851103003x").mdtrt_cert_no.endswith("X")
    with pytest.raises(IdentityError):
        claim_from_input("id", "12345")


def test_known_and_unknown_typed_ids_count_alike_until_the_face_check_passes(rig: Rig) -> None:
    session = rig.session()
    session.start()
    session.identify_credential(claim_from_input("id", PERSON.certno))
    known = session.limits.state()["failures_in_window"]
    session.cancel()
    session.start()
    session.identify_credential(IdentityClaim(CertType.ID_NUMBER, STRANGER_ID))
    unknown = session.limits.state()["failures_in_window"] - known
    assert known == unknown == 1, "the window must not tell who is enrolled"
    session.cancel()
    session.start()
    session.identify_credential(claim_from_input("id", PERSON.certno))
    assert face(session, PERSON.psn_no)["state"] == "identified"
    assert session.limits.state()["failures_in_window"] == 2, "a verified number stops counting"


def test_a_typed_id_is_refused_while_face_is_paused(rig: Rig) -> None:
    session = rig.session(rule=PauseRule(failures=1))
    session.start()
    session.credential_refused("card", "CARD_NOT_GENUINE")
    with pytest.raises(FacePausedError):
        session.identify_credential(claim_from_input("id", PERSON.certno))
    assert session.view()["prompt"] == "face_paused"
