"""The checkout session journal: plain rows in and out, transitions in order."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from terminal.clock import CST
from terminal.store.db import open_db
from terminal.store.sessions import SessionJournal

T0 = datetime(2025, 6, 3, 9, 30, tzinfo=CST)
BILL = {
    "chrg_bchno": "DEMO-OP-0001",
    "med_type": "11",
    "feedetail": [{"feedetl_sn": "1", "name": "阿莫西林胶囊", "cnt": "2", "pric": "12.8000"}],
}


def _row(session_id: str, state: str, at: datetime, **changes: Any) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "state": state,
        "started_at": T0.isoformat(),
        "updated_at": at.isoformat(),
        "face_failures": 0,
        "credential_attempts": 0,
        "verify_claim": None,
        "psn_no": None,
        "method": None,
        "bill": None,
        "msgid": None,
        **changes,
    }


def _event(
    event: str, from_state: str | None, to_state: str, at: datetime, detail: str = ""
) -> dict[str, Any]:
    return {
        "at": at.isoformat(),
        "event": event,
        "from_state": from_state,
        "to_state": to_state,
        "detail": detail,
    }


def test_the_unfinished_session_comes_back_as_it_was_saved(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    journal = SessionJournal(db)
    assert journal.unfinished() is None
    journal.save(_row("S1", "identifying", T0), _event("start", "idle", "identifying", T0))
    saved = _row("S1", "priced", T0 + timedelta(seconds=5), psn_no="P1", method="face-1:N", bill=BILL)
    journal.save(saved, _event("priced", "identified", "priced", T0 + timedelta(seconds=5), "DEMO-OP-0001"))
    db.close()
    again = SessionJournal(open_db(tmp_path))  # a restart
    assert again.unfinished() == saved, "one row per session, the bill back as a mapping"
    assert [(e["event"], e["from_state"], e["to_state"]) for e in again.events("S1")] == [
        ("start", "idle", "identifying"),
        ("priced", "identified", "priced"),
    ]


def test_a_session_back_at_idle_is_not_resumed(tmp_path: Path) -> None:
    journal = SessionJournal(open_db(tmp_path))
    journal.save(_row("S1", "identified", T0), _event("identified", "identifying", "identified", T0))
    later = T0 + timedelta(minutes=1)
    journal.save(_row("S1", "idle", later), _event("cancel", "identified", "idle", later, "cancelled"))
    assert journal.unfinished() is None
    journal.save(_row("S2", "identifying", later), _event("start", "idle", "identifying", later))
    unfinished = journal.unfinished()
    assert unfinished is not None and unfinished["session_id"] == "S2"
