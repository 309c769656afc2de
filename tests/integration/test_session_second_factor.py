"""Above the 1:N cap a passed face challenge asks for the ID number's last four, never raises to the kiosk."""

from __future__ import annotations

import pytest

from terminal.errors import CredentialAttemptsError, IdentityError, SessionStateError
from tests.integration.session_rig import PERSON, Rig, face

LAST4 = PERSON.certno[-4:]
OTHER_LAST4 = "000X" if LAST4 != "000X" else "0001"


def test_the_right_last_four_identifies_and_the_attempt_passes(rig: Rig) -> None:
    rig.identifier.large = True
    session = rig.session()
    session.start()
    assert face(session, PERSON.psn_no)["prompt"] == "second_factor"
    assert not session.wants_frames(), "the camera stops while the keypad is shown"
    view = session.second_factor(LAST4.lower())
    assert (view["state"], view["result"]) == ("identified", "pass")
    assert session.psn_no == PERSON.psn_no
    recent = session.limits.state()["recent"]
    assert {r["kind"] for r in recent} >= {"face", "credential"} and all(
        r["outcome"] == "pass" for r in recent
    )


def test_wrong_last_four_fails_the_face_attempt_and_counts_as_a_typed_number(rig: Rig) -> None:
    rig.identifier.large = True
    session = rig.session()
    session.start()
    face(session, PERSON.psn_no)
    view = session.second_factor(OTHER_LAST4)
    assert (view["state"], view["result"], view["prompt"]) == ("identifying", "fail", "face_retry")
    assert view["face_attempts_left"] == 2
    failures = session.limits.state()["failures_in_window"]
    assert failures == 2, "the face attempt and the typed last four both count in the terminal window"
    with pytest.raises(SessionStateError):
        session.second_factor(LAST4)  # one entry per passed challenge: no trying bucket after bucket


def test_malformed_last_four_is_refused_before_anything_counts(rig: Rig) -> None:
    rig.identifier.large = True
    session = rig.session()
    session.start()
    face(session, PERSON.psn_no)
    for bad in ("12a4", "X123", "12"):
        with pytest.raises(IdentityError):
            session.second_factor(bad)
    assert session.view()["prompt"] == "second_factor"
    assert session.second_factor(LAST4)["state"] == "identified"


def test_typed_numbers_spent_end_the_second_factor(rig: Rig) -> None:
    rig.identifier.large = True
    session = rig.session(max_credential_attempts=1)
    session.start()
    face(session, PERSON.psn_no)
    session.second_factor(OTHER_LAST4)
    face(session, PERSON.psn_no)
    with pytest.raises(CredentialAttemptsError):
        session.second_factor(LAST4)
    view = session.view()
    assert view["prompt"] == "credential_exhausted" and view["face_attempts_left"] == 1


@pytest.mark.parametrize("how", ["cancel", "face again"])
def test_leaving_the_keypad_forgets_the_probe_and_fails_the_attempt(rig: Rig, how: str) -> None:
    rig.identifier.large = True
    session = rig.session()
    session.start()
    face(session, PERSON.psn_no)
    if how == "cancel":
        session.cancel()
        session.start()
    else:
        session.begin_face()
    assert session.limits.state()["failures_in_window"] == 1, "the abandoned face attempt failed"
    with pytest.raises(SessionStateError):
        session.second_factor(LAST4)
