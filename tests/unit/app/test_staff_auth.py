"""Staff credentials: salted scrypt at rest, signed short-lived tokens, approvals kept apart from sessions."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from terminal.app.sign_in_limits import FailureRules
from terminal.app.staff_auth import SignInRules, StaffAuth
from terminal.errors import (
    ApprovalMismatchError,
    ApprovalRequiredError,
    CounterError,
    StaffLockedOutError,
    StaffSignInError,
)
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
    staff.add("c01", "王收银", "cashier", PASSWORD, clock.now(), "technician:test")
    _, cashier = auth.sign_in("c01", PASSWORD)
    approval, _ = auth.approve("s01", PASSWORD, cashier, "refund", "M1", 100)
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


@pytest.fixture
def counter(staff: StaffStore) -> StaffStore:
    for staff_id, name, role in (("c01", "王收银", "cashier"), ("c02", "李收银", "cashier"),
                                 ("s02", "赵主管", "supervisor")):  # fmt: skip
        staff.add(staff_id, name, role, PASSWORD, FixedClock().now(), "technician:test")
    return staff


def test_a_demoted_supervisor_loses_the_supervisor_token_at_once(counter: StaffStore) -> None:
    clock = FixedClock()
    auth = StaffAuth(counter, clock)
    token, _ = auth.sign_in("s01", PASSWORD)
    _, cashier = auth.sign_in("c01", PASSWORD)
    approval, _ = auth.approve("s01", PASSWORD, cashier, "refund", "M1", 100)
    counter.set_role("s01", "cashier", clock.now(), "technician:test")
    # well within both tokens' lifetimes
    with pytest.raises(StaffSignInError, match="changed since signing in"):
        auth.verify(token)
    with pytest.raises(StaffSignInError, match="changed since signing in"):
        auth.use_approval(approval, cashier, "refund", "M1", 100)
    # made a supervisor again: the old token stays dead (the record's revision moved on)
    counter.set_role("s01", "supervisor", clock.now(), "technician:test")
    with pytest.raises(StaffSignInError):
        auth.verify(token)
    assert auth.verify(auth.sign_in("s01", PASSWORD)[0]).role == "supervisor"
    roles = [r["detail"] for r in counter._db.query("SELECT detail FROM audit WHERE action = 'staff_role'")]
    assert len(roles) == 2


def test_an_approval_is_good_once_for_its_operation_amount_and_cashier(counter: StaffStore) -> None:
    auth = StaffAuth(counter, FixedClock())
    _, c01 = auth.sign_in("c01", PASSWORD)
    _, c02 = auth.sign_in("c02", PASSWORD)
    approval, who = auth.approve("s01", PASSWORD, c01, "refund", "M1", 9136)
    assert (who.operation, who.msgid, who.fen, who.cashier) == ("refund", "M1", 9136, "c01")
    for cashier, operation, msgid, fen in (
        (c02, "refund", "M1", 9136),  # another cashier holding the token
        (c01, "void", "M1", 9136),  # another operation
        (c01, "refund", "M2", 9136),  # another settlement
        (c01, "refund", "M1", 9137),  # another amount
    ):
        with pytest.raises(ApprovalMismatchError):
            auth.use_approval(approval, cashier, operation, msgid, fen)
    assert auth.use_approval(approval, c01, "refund", "M1", 9136).actor == "staff:s01"
    with pytest.raises(ApprovalMismatchError, match="used already"):
        auth.use_approval(approval, c01, "refund", "M1", 9136)
    with pytest.raises(ApprovalRequiredError):
        auth.approve("c02", PASSWORD, c01, "refund", "M1", 9136)  # a cashier does not approve
    _, s01 = auth.sign_in("s01", PASSWORD)
    with pytest.raises(ApprovalRequiredError):
        auth.approve("s01", PASSWORD, s01, "refund", "M1", 9136)  # nor anyone their own
    session, _ = auth.sign_in("s02", PASSWORD)
    with pytest.raises(StaffSignInError):
        auth.use_approval(session, c01, "refund", "M1", 9136)  # a session is no approval


def test_wrong_passwords_pause_that_client_not_everyone(counter: StaffStore) -> None:
    clock = FixedClock()
    rules = SignInRules(failures=FailureRules(per_staff=3, client_failures=5, max_clients=4))
    auth = StaffAuth(counter, clock, rules)
    for _ in range(3):
        with pytest.raises(StaffSignInError):
            auth.sign_in("c01", "wrong password", client="10.0.0.66")
    with pytest.raises(StaffLockedOutError):
        auth.sign_in("c01", PASSWORD, client="10.0.0.66")
    # the cashier's own counter is not locked out by someone else's guesses
    assert auth.sign_in("c01", PASSWORD, client="10.0.0.5")[1].staff_id == "c01"
    # unknown IDs count against the guessing client's budget like known ones, then pause it whole
    for unknown in ("x1", "x2"):
        with pytest.raises(StaffSignInError):
            auth.sign_in(unknown, "wrong password", client="10.0.0.66")
    with pytest.raises(StaffLockedOutError, match="from this counter"):
        auth.sign_in("c02", PASSWORD, client="10.0.0.66")
    # an unknown ID pauses after as many tries as a known one: the pause does not say which IDs exist
    for _ in range(3):
        with pytest.raises(StaffSignInError) as caught:
            auth.sign_in("nobody", "wrong password", client="10.0.0.7")
        assert type(caught.value) is StaffSignInError
    with pytest.raises(StaffLockedOutError):
        auth.sign_in("nobody", "wrong password", client="10.0.0.7")
    # every pause ends by itself
    clock.at += rules.failures.pause + rules.failures.window
    assert auth.sign_in("c01", PASSWORD, client="10.0.0.66")[1].staff_id == "c01"


def test_failures_from_many_clients_and_ids_stay_in_bounded_memory(staff: StaffStore) -> None:
    rules = SignInRules(failures=FailureRules(client_failures=3, max_clients=8))
    auth = StaffAuth(staff, FixedClock(), rules)
    limits = auth.failures
    for n in range(100):
        # what `failed` keeps, without paying the password hash 100 times
        limits.failed(f"10.1.{n}.1", f"guess{n}", FixedClock().now())
        limits.failed("10.9.9.9", f"guess{n}", FixedClock().now())
    assert limits.clients() == 8
    assert max(len(r.seen) for r in limits._clients.values()) == 3


def _audit(store: StaffStore, action: str) -> list[dict[str, Any]]:
    rows = store._db.query("SELECT actor, subject, detail FROM audit WHERE action = ? ORDER BY seq", [action])
    return [{"actor": r["actor"], "subject": r["subject"], **json.loads(r["detail"])} for r in rows]


def test_a_disabled_person_with_the_right_password_is_answered_as_a_wrong_password(
    counter: StaffStore,
) -> None:
    """Regression: "staff ID c01 is disabled" told whoever typed it that the password was right."""
    rules = SignInRules(failures=FailureRules(per_staff=3))
    auth = StaffAuth(counter, FixedClock(), rules)
    with pytest.raises(StaffSignInError) as wrong:
        auth.sign_in("c01", "not the password", client="10.0.0.9")
    counter.disable("c01", FixedClock().now(), "technician:test")
    for _ in range(2):
        with pytest.raises(StaffSignInError) as disabled:
            auth.sign_in("c01", PASSWORD, client="10.0.0.9")
        assert type(disabled.value) is StaffSignInError and str(disabled.value) == str(wrong.value)
    # and it counts as a wrong password: the third pauses that ID from that client
    with pytest.raises(StaffLockedOutError):
        auth.sign_in("c01", PASSWORD, client="10.0.0.9")


def test_approvals_issued_used_and_refused_are_audited(counter: StaffStore) -> None:
    auth = StaffAuth(counter, FixedClock())
    _, c01 = auth.sign_in("c01", PASSWORD)
    _, c02 = auth.sign_in("c02", PASSWORD)
    with pytest.raises(ApprovalMismatchError):
        auth.approve("s01", PASSWORD, c01, "refund", "M1", 9136, shown_fen=9100)  # not the ledger's amount
    approval, _ = auth.approve("s01", PASSWORD, c01, "refund", "M1", 9136, client="10.0.0.5")
    with pytest.raises(ApprovalMismatchError):
        auth.use_approval(approval, c02, "refund", "M1", 9136)
    auth.use_approval(approval, c01, "refund", "M1", 9136)
    with pytest.raises(ApprovalMismatchError):
        auth.use_approval(approval, c01, "refund", "M1", 9136)
    with pytest.raises(ApprovalRequiredError):
        auth.approve("c02", PASSWORD, c01, "refund", "M1", 9136)
    _, s01 = auth.sign_in("s01", PASSWORD)
    with pytest.raises(ApprovalRequiredError):
        auth.approve("s01", PASSWORD, s01, "refund", "M1", 9136)
    [issued] = _audit(counter, "approval_issued")
    assert (issued["actor"], issued["subject"], issued["fen"], issued["cashier"], issued["client"]) == (
        "staff:s01", "M1", 9136, "c01", "10.0.0.5",
    )  # fmt: skip
    [used] = _audit(counter, "approval_used")
    assert (used["actor"], used["approved_by"], used["fen"]) == ("staff:c01", "s01", 9136)
    refused = [(r["actor"], r["reason"]) for r in _audit(counter, "approval_refused")]
    assert refused == [
        ("staff:c01", "amount"),
        ("staff:c02", "mismatch"),
        ("staff:c01", "used already"),
        ("staff:c02", "role cashier"),
        ("staff:s01", "own operation"),
    ]


def test_pauses_are_audited_once_and_wrong_passwords_logged_without_the_password(
    counter: StaffStore, caplog: pytest.LogCaptureFixture
) -> None:
    rules = SignInRules(failures=FailureRules(per_staff=2, client_failures=3))
    auth = StaffAuth(counter, FixedClock(), rules)
    typed = "hunter2-447512"
    caplog.set_level(logging.INFO, logger="terminal.app.staff_auth")
    for staff_id in ("c01", "c01", "c02"):
        with pytest.raises(StaffSignInError):
            auth.sign_in(staff_id, typed, client="10.0.0.66")
    for _ in range(3):  # refused while paused: neither counted nor audited again
        with pytest.raises(StaffLockedOutError):
            auth.sign_in("c02", typed, client="10.0.0.66")
    paused = [(p["subject"], p["scope"], p["failures"]) for p in _audit(counter, "staff_sign_in_paused")]
    assert paused == [("c01", "staff", 2), ("10.0.0.66", "client", 3)]
    failures = [r.getMessage() for r in caplog.records if "wrong ID or password" in r.getMessage()]
    assert len(failures) == 3 and all("10.0.0.66" in m for m in failures)
    assert "'c01'" in failures[0]
    assert all(typed not in r.getMessage() and "447512" not in r.getMessage() for r in caplog.records)


def test_many_addresses_share_a_terminal_wide_budget_that_spares_a_working_counter(
    counter: StaffStore,
) -> None:
    """Regression: each new address started a fresh client record, so guessing from many addresses on
    one machine was never paused (and enough of them pushed the guesser's own records out)."""
    clock = FixedClock()
    window = timedelta(minutes=1)
    failures = FailureRules(terminal_failures=4, terminal_window=window)
    auth = StaffAuth(counter, clock, SignInRules(failures=failures))
    auth.sign_in("c01", PASSWORD, client="10.0.0.5")  # the counter at work
    for n in range(4):
        with pytest.raises(StaffSignInError) as caught:
            auth.sign_in("s01", f"guess {n}", client=f"10.2.0.{n}")
        assert type(caught.value) is StaffSignInError
    for n in range(4, 20):  # new addresses, even with the right password: refused, unchecked, uncounted
        with pytest.raises(StaffLockedOutError, match="on this terminal"):
            auth.sign_in("s01", PASSWORD, client=f"10.2.0.{n}")
    assert auth.sign_in("c02", PASSWORD, client="10.0.0.5")[1].staff_id == "c02", "the working counter"
    [pause] = _audit(counter, "staff_sign_in_paused")
    assert (pause["scope"], pause["failures"]) == ("terminal", 4)
    # the pause lasts until the oldest failure is a window old, no longer
    clock.at += window
    assert auth.sign_in("s01", PASSWORD, client="10.0.0.6")[1].staff_id == "s01"
    with pytest.raises(StaffSignInError) as again:
        auth.sign_in("s01", "guess 5", client="10.2.0.99")
    assert type(again.value) is StaffSignInError


def test_a_clock_set_back_does_not_stretch_the_pauses(counter: StaffStore) -> None:
    """Regression: failures stamped before the clock went back stayed 'recent' for as long as it went
    back, so the client and terminal-wide pauses lasted hours, not minutes."""
    clock = FixedClock()
    failures = FailureRules(per_staff=3, client_failures=3, terminal_failures=3)
    auth = StaffAuth(counter, clock, SignInRules(failures=failures))
    for n in range(3):
        with pytest.raises(StaffSignInError):
            auth.sign_in("c01", f"guess {n}", client="10.0.0.66")
    with pytest.raises(StaffLockedOutError):
        auth.sign_in("c01", PASSWORD, client="10.0.0.66")
    clock.at -= timedelta(hours=3)  # NTP pulls a clock that ran ahead back
    assert auth.sign_in("c01", PASSWORD, client="10.0.0.66")[1].staff_id == "c01"
    assert auth.sign_in("s01", PASSWORD, client="10.0.0.70")[1].staff_id == "s01"
    # counting starts again from the clock as it now reads
    for n in range(3):
        with pytest.raises(StaffSignInError):
            auth.sign_in("c01", f"again {n}", client="10.0.0.66")
    with pytest.raises(StaffLockedOutError):
        auth.sign_in("c01", PASSWORD, client="10.0.0.66")
