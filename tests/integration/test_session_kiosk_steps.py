"""What the kiosk's steps need from the session: faces in view, the timeout warning, 继续, back to bills."""

from __future__ import annotations

from datetime import timedelta

import pytest

from terminal.errors import SessionChangedError, SessionStateError
from tests.integration.session_rig import PERSON, Rig, face, load_sample


def test_faces_in_view_show_while_identifying_and_are_forgotten_for_the_next_patient(rig: Rig) -> None:
    session = rig.session()
    session.faces_seen(1)
    assert session.view()["faces_in_view"] is None, "nobody is identifying: the count is not shown"
    session.start()
    before = session.version
    session.faces_seen(1)
    assert session.view()["faces_in_view"] == 1 and session.version == before + 1
    session.faces_seen(1)
    assert session.version == before + 1, "an unchanged count is no new view"
    session.cancel()
    session.start()
    assert session.view()["faces_in_view"] is None, "the last patient's count never starts the next one"


def test_the_timeout_warning_comes_fifteen_seconds_before_and_keep_alive_starts_the_time_again(
    rig: Rig,
) -> None:
    session = rig.session()
    session.start()
    assert session.view()["timeout_warning"] is False
    rig.clock.at += timedelta(seconds=120 - 15)
    before = session.version
    assert session.tick() is False
    view = session.view()
    assert view["timeout_warning"] is True and view["timeout_left_s"] == 15
    assert session.version == before + 1, "the event stream sends the warning"
    kept = session.keep_alive()
    assert kept["timeout_warning"] is False and kept["timeout_left_s"] == 120
    rig.clock.at += timedelta(seconds=119)
    assert session.tick() is False and session.view()["state"] == "identifying"
    rig.clock.at += timedelta(seconds=2)
    assert session.tick() is True and session.view()["outcome"] == "timeout"
    with pytest.raises(SessionStateError):
        session.keep_alive()  # nothing to keep once it ended


def test_back_to_bills_leaves_the_priced_bill_unconfirmed(rig: Rig) -> None:
    session = rig.session()
    session.start()
    face(session, PERSON.psn_no)
    priced = load_sample(session)
    assert priced["state"] == "priced"
    with pytest.raises(SessionChangedError):
        session.back_to_bills("another-session")
    back = session.back_to_bills(priced["session_id"])
    assert (back["state"], back["prompt"]) == ("identified", "choose_bill")
    assert "bill" not in back and "amounts_digest" not in back
    assert load_sample(session)["state"] == "priced", "another (or the same) bill can be chosen"


def test_the_challenge_progress_shows_only_while_a_face_attempt_runs(rig: Rig) -> None:
    session = rig.session()
    session.start()
    view = session.view()
    assert (view["challenge_step"], view["challenge_steps"], view["challenge_left_s"]) == (None, None, None)
