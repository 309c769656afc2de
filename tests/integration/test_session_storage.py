"""The session and a failing journal: memory never runs ahead of what the journal committed.

A fault-injecting journal port (session_rig.FaultyJournal) refuses one named transition as a busy or full
database would; the session must stay as the journal last had it, answer a typed StoreError, and carry on
once the database answers again, never charging twice nor losing a settlement.
"""

from __future__ import annotations

import pytest

from terminal.errors import StoreBusyError, StoreFullError
from terminal.pipeline.session import Session
from terminal.pipeline.session_state import State
from tests.integration.session_rig import PERSON, Rig, confirm, face, load_sample, proven


def _priced(rig: Rig) -> Session:
    session = rig.session()
    session.start()
    session.identify_credential(proven())
    assert load_sample(session)["state"] == "priced"
    return session


def _journalled(rig: Rig, session_id: str) -> list[str]:
    return [e["event"] for e in rig.journal.events(session_id)]


def test_a_start_the_journal_refused_leaves_the_terminal_idle_and_a_retry_works(rig: Rig) -> None:
    session = rig.session()
    before = session.view()
    rig.journal.fail["start"] = StoreFullError("database or disk is full (SQLITE_FULL)")
    with pytest.raises(StoreFullError):
        session.start()
    assert session.state is State.IDLE and session.session_id == before["session_id"]
    assert session.view()["state"] == "idle" and session.view()["prompt"] == before["prompt"]
    assert rig.journal.unfinished() is None, "nothing journalled"
    assert session.start()["state"] == "identifying"
    assert _journalled(rig, session.session_id) == ["start"]


def test_a_credential_the_journal_refused_leaves_nobody_identified(rig: Rig) -> None:
    session = rig.session()
    session.start()
    rig.journal.fail["identified"] = StoreBusyError("database is locked (SQLITE_BUSY)")
    with pytest.raises(StoreBusyError):
        session.identify_credential(proven())
    view = session.view()
    assert (view["state"], session.psn_no, view["result"]) == ("identifying", None, None)
    assert session.identify_credential(proven())["state"] == "identified"
    assert session.psn_no == PERSON.psn_no


def test_a_face_start_the_journal_refused_leaves_no_attempt_waiting_for_frames(rig: Rig) -> None:
    session = rig.session()
    session.start()
    rig.journal.fail["face_start"] = StoreBusyError("database is locked (SQLITE_BUSY)")
    with pytest.raises(StoreBusyError):
        session.begin_face()
    assert not session.wants_frames() and session.view()["prompt"] == "choose_method"
    assert face(session, PERSON.psn_no)["state"] == "identified"


def test_a_confirm_the_journal_refused_stays_priced_and_charges_nothing(rig: Rig) -> None:
    session = _priced(rig)
    rig.journal.fail["confirm"] = StoreBusyError("database is locked (SQLITE_BUSY)")
    with pytest.raises(StoreBusyError):
        confirm(session)
    assert session.state is State.PRICED and session.view()["prompt"] == "confirm_bill"
    assert rig.ledger.records == {}
    assert confirm(session)["state"] == "settled"
    assert list(rig.ledger.records) == ["DEMO-OP-0001"]


def test_settled_but_not_journalled_shows_the_receipt_on_the_next_tick(rig: Rig) -> None:
    session = _priced(rig)
    rig.journal.fail["settled"] = StoreBusyError("database is locked (SQLITE_BUSY)")
    with pytest.raises(StoreBusyError):
        confirm(session)
    # The ledger has it, the journal says confirmed: memory is as the journal last had it.
    assert session.state is State.CONFIRMED and list(rig.ledger.records) == ["DEMO-OP-0001"]
    assert session.tick() is True
    view = session.view()
    assert (view["state"], view["prompt"]) == ("settled", "take_receipt")
    assert view["receipt"]["msgid"] == rig.ledger.records["DEMO-OP-0001"].msgid
    assert _journalled(rig, session.session_id)[-2:] == ["confirm", "settled_already"]
    assert len(rig.ledger.records) == 1


def test_a_settle_and_its_failure_both_unjournalled_go_back_to_priced_on_tick(rig: Rig) -> None:
    session = _priced(rig)
    rig.checkout.crash = "busy"
    rig.journal.fail["settle_failed"] = StoreBusyError("database is locked (SQLITE_BUSY)")
    with pytest.raises(StoreBusyError):
        confirm(session)
    assert session.state is State.CONFIRMED and rig.ledger.records == {}
    rig.journal.fail["confirm_recheck"] = StoreBusyError("database is locked (SQLITE_BUSY)")
    assert session.tick() is False, "a tick the journal refused changes nothing and does not raise"
    assert session.state is State.CONFIRMED
    assert session.tick() is True
    view = session.view()
    assert (view["state"], view["prompt"]) == ("priced", "confirm_again")
    assert confirm(session)["state"] == "settled"
    assert len(rig.ledger.records) == 1


def test_cancel_of_a_session_left_confirmed_asks_the_ledger_first(rig: Rig) -> None:
    session = _priced(rig)
    rig.checkout.crash = "busy"
    rig.journal.fail["settle_failed"] = StoreBusyError("database is locked (SQLITE_BUSY)")
    with pytest.raises(StoreBusyError):
        confirm(session)
    assert session.cancel()["state"] == "idle"
    assert session.view()["outcome"] == "cancelled" and rig.ledger.records == {}


def test_a_settle_refused_busy_but_journalled_asks_again(rig: Rig) -> None:
    session = _priced(rig)
    rig.checkout.crash = "busy"
    with pytest.raises(StoreBusyError):
        confirm(session)
    view = session.view()
    assert (view["state"], view["prompt"], view["result"]) == ("priced", "confirm_again", "fail")
    assert confirm(session)["state"] == "settled" and len(rig.ledger.records) == 1
