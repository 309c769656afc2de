"""Staff credentials: salted scrypt at rest, signed short-lived tokens, approvals kept apart from sessions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from terminal.app.staff_auth import StaffAuth
from terminal.errors import CounterError, StaffSignInError
from terminal.store.db import open_db
from terminal.store.staff import StaffStore
from tests.fakes import FixedClock

PASSWORD = "a long passphrase"


@pytest.fixture
def staff(tmp_path: Path) -> StaffStore:
    store = StaffStore(open_db(tmp_path))
    store.add("s01", "张主管", "supervisor", PASSWORD, FixedClock().now(), "technician:test")
    return store


def test_the_password_is_kept_only_as_a_salted_hash(staff: StaffStore, tmp_path: Path) -> None:
    staff.add("c01", "王收银", "cashier", PASSWORD, FixedClock().now(), "technician:test")
    rows = list(open_db(tmp_path).query("SELECT salt, hash FROM staff ORDER BY staff_id"))
    assert len({bytes(r["salt"]) for r in rows}) == 2 and len({bytes(r["hash"]) for r in rows}) == 2
    assert all(PASSWORD.encode() not in bytes(r["hash"]) for r in rows)
    assert staff.check("c01", PASSWORD).name == "王收银"
    with pytest.raises(StaffSignInError):
        staff.check("c01", PASSWORD + "x")
    with pytest.raises(CounterError):
        staff.add("c01", "again", "cashier", PASSWORD, FixedClock().now(), "t")


def test_a_token_is_refused_when_altered_of_another_kind_or_its_person_is_disabled(staff: StaffStore) -> None:
    clock = FixedClock()
    auth = StaffAuth(staff, clock)
    token, who = auth.sign_in("s01", PASSWORD)
    assert auth.verify(token).actor == "staff:s01" and who.role == "supervisor"
    body, _, signature = token.partition(".")
    with pytest.raises(StaffSignInError):
        auth.verify(body + "." + signature[::-1])
    with pytest.raises(StaffSignInError):
        auth.verify(token, kind="approval")
    approval, _ = auth.sign_in("s01", PASSWORD, kind="approval", msgid="M1")
    assert auth.verify(approval, kind="approval").msgid == "M1"
    clock.at += auth.rules.approval + timedelta(seconds=1)
    with pytest.raises(StaffSignInError):
        auth.verify(approval, kind="approval")
    # another service start (a new key) does not accept the old token
    with pytest.raises(StaffSignInError):
        StaffAuth(staff, clock).verify(token)
    staff.disable("s01", clock.now(), "technician:test")
    with pytest.raises(StaffSignInError):
        auth.verify(token)
    with pytest.raises(StaffSignInError):
        auth.sign_in("s01", PASSWORD)


def test_a_token_with_non_ascii_characters_is_refused_not_an_error(staff: StaffStore) -> None:
    with pytest.raises(StaffSignInError):
        StaffAuth(staff, FixedClock()).verify("e30.签名")
