"""The sync worker's order, retry, backoff and unknown-outcome rules, against a fake Uplink port."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from hypothesis import given
from hypothesis import strategies as st

from terminal.clock import CST
from terminal.errors import UplinkRefused, UplinkUnknownOutcome, UplinkUnreachable
from terminal.pipeline.sync import Backoff, SyncWorker
from terminal.store import audit
from terminal.store.db import open_db
from terminal.store.outbox import OutboxStore
from terminal.uplink.wire import Response
from tests.fakes import FixedClock


class FakeUplink:
    """Scripted upstream: `failures` maps msgid → errors raised on successive sends of it."""

    def __init__(self) -> None:
        self.sign_no = ""
        self.committed: dict[str, dict[str, Any]] = {}
        self.sent: list[str] = []
        self.queried: list[str] = []
        self.failures: dict[str, list[Exception]] = {}
        self.commit_before_failing: set[str] = set()

    def sign_in(self, msgid: str, at: Any) -> str:
        self.sign_no = "SN"
        return self.sign_no

    def call(self, envelope: Mapping[str, Any]) -> Response:
        msgid = str(envelope["msgid"])
        self.sent.append(msgid)
        pending = self.failures.get(msgid, [])
        if pending:
            if msgid in self.commit_before_failing:
                self._commit(msgid, envelope)
            raise pending.pop(0)
        return self._commit(msgid, envelope)

    def _commit(self, msgid: str, envelope: Mapping[str, Any]) -> Response:
        amount = envelope["input"]["data"]["medfee_sumamt"]
        response = {
            "infcode": 0,
            "inf_refmsgid": f"R{msgid}",
            "output": {"setlinfo": {"medfee_sumamt": amount}},
        }
        self.committed.setdefault(msgid, response)
        return Response.model_validate(self.committed[msgid])

    def query(self, msgid: str, omsgid: str, at: Any) -> dict[str, Any] | None:
        self.queried.append(omsgid)
        return self.committed.get(omsgid)

    def daily_totals(self, msgid: str, totals: Mapping[str, str], at: Any) -> dict[str, Any]:
        return {"stmt_rslt": "0"}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    """A terminal database with five queued settlements' outbox entries."""
    database = open_db(tmp_path)
    for i in range(5):
        envelope = {"msgid": f"M{i}", "infno": "2207", "input": {"data": {"medfee_sumamt": f"{i}.00"}}}
        database.execute(
            "INSERT INTO outbox (msgid, infno, envelope, created_at) VALUES (?, '2207', ?, 'now')",
            [f"M{i}", json.dumps(envelope)],
        )
    try:
        yield database
    finally:
        database.close()


def _worker(
    db: sqlite_utils.Database, link: FakeUplink, sleeps: list[float], attempts: int = 4
) -> SyncWorker:
    counter = iter(range(10_000))
    return SyncWorker(
        OutboxStore(db),
        link,
        FixedClock(),
        lambda at: f"Q{next(counter)}",
        batch=2,
        backoff=Backoff(base=1.0, cap=8.0, max_attempts=attempts),
        sleep=sleeps.append,
        rnd=lambda: 1.0,
    )


def test_drains_in_order_across_batches(db: sqlite_utils.Database) -> None:
    link = FakeUplink()
    report = _worker(db, link, []).drain()
    assert report.delivered == 5
    assert link.sent == ["M0", "M1", "M2", "M3", "M4"]
    assert OutboxStore(db).counts() == {"delivered": 5}
    assert audit.verify(db) == []


def test_unreachable_retries_with_exponential_backoff_then_delivers(db: sqlite_utils.Database) -> None:
    link = FakeUplink()
    link.failures["M0"] = [UplinkUnreachable("refused")] * 3
    sleeps: list[float] = []
    report = _worker(db, link, sleeps).drain()
    assert report.delivered == 5
    assert sleeps == [1.0, 2.0, 4.0]
    assert link.queried == []  # nothing reached the upstream, so there is nothing to ask about


def test_unknown_outcome_asks_by_msgid_instead_of_resending(db: sqlite_utils.Database) -> None:
    link = FakeUplink()
    link.failures["M1"] = [UplinkUnknownOutcome("timeout")]
    link.commit_before_failing.add("M1")
    report = _worker(db, link, []).drain()
    assert report.recovered_by_query == 1
    assert link.sent.count("M1") == 1
    assert link.queried == ["M1"]
    assert OutboxStore(db).upstream_result("M1") == {"setlinfo": {"medfee_sumamt": "1.00"}}


def test_unknown_outcome_not_committed_is_sent_again_once(db: sqlite_utils.Database) -> None:
    link = FakeUplink()
    link.failures["M2"] = [UplinkUnknownOutcome("500")]
    report = _worker(db, link, []).drain()
    assert report.delivered == 5
    assert link.sent.count("M2") == 2
    assert link.queried == ["M2"]


def test_out_of_attempts_stops_in_place_and_remembers_the_unknown_outcome(db: sqlite_utils.Database) -> None:
    link = FakeUplink()
    link.failures["M1"] = [UplinkUnknownOutcome("timeout")] * 10
    report = _worker(db, link, [], attempts=3).drain()
    assert report.delivered == 1
    assert "not delivered after 3 attempts" in report.stopped_on
    assert "M2" not in link.sent  # order: nothing overtakes a stuck entry
    first = OutboxStore(db).pending(1)[0]
    assert (first.msgid, first.attempts, first.outcome_unknown) == ("M1", 3, True)


def test_refused_entry_is_set_aside_and_the_drain_goes_on(db: sqlite_utils.Database) -> None:
    link = FakeUplink()
    link.failures["M0"] = [UplinkRefused("unknown person", "unknown person")]
    report = _worker(db, link, []).drain()
    assert report.refused == ["M0"]
    assert report.delivered == 4
    assert OutboxStore(db).counts() == {"refused": 1, "delivered": 4}


def test_refusal_that_cannot_be_taken_back_out_is_parked_with_the_accumulators_untouched(
    db: sqlite_utils.Database,
) -> None:
    # A settlement row whose stored result has no accumulator delta: reversing it is impossible, and
    # setting it aside anyway would leave a refused settlement in the patient's year-to-date totals.
    # Parked instead (issue 15): the accumulators are left alone for a technician, and the others go on.
    db.execute(
        "INSERT INTO settlements (msgid, chrg_bchno, psn_no, med_type, identified_by, setl_time,"
        " medfee_sumamt, fund_pay_sumamt, psn_part_amt, result, year)"
        " VALUES ('M0', 'B0', 'P0', '11', 'credential', '2025-06-03T09:30:00+08:00', '0.00', '0.00',"
        " '0.00', '{}', 2025)"
    )
    db.execute("INSERT INTO accumulators (psn_no, year, state, updated_at) VALUES ('P0', 2025, '{}', 'x')")
    link = FakeUplink()
    link.failures["M0"] = [UplinkRefused("duplicate bill", "duplicate bill")]
    report = _worker(db, link, []).drain()
    assert report.refused == []
    assert report.parked == ["M0"]
    assert report.stopped_on == ""
    assert link.sent == ["M0", "M1", "M2", "M3", "M4"]
    assert OutboxStore(db).counts() == {"parked": 1, "delivered": 4}
    row = next(iter(db.query("SELECT last_error FROM outbox WHERE msgid = 'M0'")))
    assert "could not be set aside" in row["last_error"]
    assert [dict(r) for r in db.query("SELECT state FROM accumulators")] == [{"state": "{}"}]
    assert audit.verify(db) == []


def test_full_drain_records_the_sync_time_for_the_offline_policy(db: sqlite_utils.Database) -> None:
    assert OutboxStore(db).offline_facts(CST) == (5, None)
    _worker(db, FakeUplink(), []).drain()
    queued, last = OutboxStore(db).offline_facts(CST)
    assert queued == 0
    assert last == FixedClock().at


@given(attempt=st.integers(0, 200), r=st.floats(0, 1))
def test_backoff_delay_stays_within_jitter_bounds(attempt: int, r: float) -> None:
    backoff = Backoff(base=0.5, cap=30.0)
    delay = backoff.delay(attempt, lambda: r)
    assert 0 <= delay <= min(30.0, 0.5 * 2**attempt)
