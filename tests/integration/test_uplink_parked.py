"""Poisoned outbox entries are parked with their error and delivery goes on; a technician re-queues or voids.

Real SQLite, the real reference upstream on loopback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.serving import ServerThread
from devkit.upstream.state import Upstream
from terminal.errors import OutboxEntryError
from terminal.pipeline.sync import reverted_accumulators
from terminal.store import audit
from terminal.store.outbox import OutboxStore
from terminal.store.outbox_parked import ParkedEntries
from terminal.uplink.wire import envelope_problem
from tests.integration.uplink_kit import PEOPLE, Side, terminal_side, uplink, upstream_settlements, worker

# 14 characters instead of the institution code's 12: the msgids it makes are 32 long, over the wire's 30.
LONG_PREFIX = "H4303020000129"


@pytest.fixture
def side(tmp_path: Path) -> Iterator[Side]:
    """The terminal's settlement side (envelopes checked when queued, as the terminal does)."""
    s = terminal_side(tmp_path / "terminal")
    try:
        yield s
    finally:
        s.db.close()


def _poisoned(side: Side, index: int, folder: Path, check: bool = True) -> str:
    """Settle bill `index` through a ledger whose msgids are too long; its msgid."""
    other = terminal_side(folder, side.clock, msgid_prefix=LONG_PREFIX, check_envelopes=check)
    try:
        return other.settle(index).msgid
    finally:
        other.db.close()


def _states(side: Side) -> dict[str, str]:
    return {str(r["msgid"]): str(r["state"]) for r in side.db.query("SELECT msgid, state FROM outbox")}


def test_an_envelope_the_wire_refuses_is_parked_when_queued_and_delivery_goes_on(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    first = side.settle(0)  # PEOPLE[0]
    bad = _poisoned(side, 1, tmp_path / "terminal")  # PEOPLE[1]
    later = [side.settle(i) for i in (2, 3)]  # PEOPLE[2], PEOPLE[0]
    assert len(bad) == 32
    parked = ParkedEntries(side.db).entries()
    assert [row["msgid"] for row in parked] == [bad]
    assert "msgid" in parked[0]["last_error"] and "30" in parked[0]["last_error"]
    link = uplink(tmp_path / "terminal", server.url)
    try:
        report = worker(side, link).drain()
    finally:
        link.close()
    assert (report.delivered, report.stopped_on) == (3, "")
    assert [h["msgid"] for h in upstream_settlements(server.url)] == [first.msgid] + [r.msgid for r in later]
    assert OutboxStore(side.db).counts() == {"delivered": 3, "parked": 1}
    actions = [(r["action"], r["subject"]) for r in side.db.query("SELECT action, subject FROM audit")]
    assert ("parked", bad) in actions
    assert audit.verify(side.db) == []


def test_a_parked_entry_holds_back_only_its_own_persons_later_entries_until_voided(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    person = PEOPLE[0]  # a retired employee: the sample bill moves their accumulators
    earlier = side.settle(0)  # PEOPLE[0], before anything was parked
    before = dict(side.ledger.accumulators(person.psn_no, 2025))
    assert before
    bad = _poisoned(side, 3, tmp_path / "terminal")  # PEOPLE[0]
    held = side.settle(6)  # PEOPLE[0] again: priced on top of the parked settlement
    other = side.settle(5)  # PEOPLE[2]
    link = uplink(tmp_path / "terminal", server.url)
    try:
        first = worker(side, link).drain()
        assert first.delivered == 2 and first.stopped_on == ""
        assert [h["msgid"] for h in upstream_settlements(server.url)] == [earlier.msgid, other.msgid]
        assert _states(side) == {
            earlier.msgid: "delivered",
            bad: "parked",
            held.msgid: "pending",
            other.msgid: "delivered",
        }
        # The held entry is neither "waiting for delivery" nor stuck: it does not put the terminal offline.
        facts = OutboxStore(side.db).uplink_facts()
        assert (facts.queued, facts.oldest_queued, facts.parked) == (0, None, 1)
        assert ParkedEntries(side.db).entries()[0]["holding"] == 1

        with pytest.raises(OutboxEntryError, match="needs a reason"):
            ParkedEntries(side.db).void(bad, " ", "li", side.clock.now(), reverted_accumulators)
        restored = ParkedEntries(side.db).void(
            bad, "msgid too long (old build)", "li", side.clock.now(), reverted_accumulators
        )
        assert restored
        second = worker(side, link).drain()
    finally:
        link.close()
    assert second.delivered == 1
    held_at = [h["msgid"] for h in upstream_settlements(server.url)]
    assert held_at == [earlier.msgid, other.msgid, held.msgid]
    assert _states(side)[bad] == "voided"
    # Only the voided settlement left the accumulators: taking the held one out too gives `before` back.
    after = dict(side.ledger.accumulators(person.psn_no, 2025))
    held_result = side.ledger.settlement(held.msgid)["result"]
    assert after != before
    assert reverted_accumulators(after, held_result) == before
    last = dict(next(iter(side.db.query("SELECT actor, action, detail FROM audit WHERE action = 'void'"))))
    assert last["actor"] == "technician:li"
    assert json.loads(last["detail"])["accumulators_restored"] is True
    assert audit.verify(side.db) == []


def test_an_entry_queued_unchecked_is_parked_at_send_and_cannot_be_requeued_while_still_invalid(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    bad = _poisoned(side, 0, tmp_path / "terminal", check=False)  # as a release before issue 15 queued it
    good = side.settle(2)
    link = uplink(tmp_path / "terminal", server.url)
    try:
        report = worker(side, link).drain()
    finally:
        link.close()
    assert report.parked == [bad]
    assert report.delivered == 1 and report.stopped_on == ""
    assert [h["msgid"] for h in upstream_settlements(server.url)] == [good.msgid]
    parked = ParkedEntries(side.db)
    assert envelope_problem(parked.envelope(bad))
    with pytest.raises(OutboxEntryError, match="not parked"):
        parked.requeue(good.msgid, "li", side.clock.now())
    with pytest.raises(OutboxEntryError, match="no outbox entry"):
        parked.requeue("NOSUCHMSGID", "li", side.clock.now())


def test_a_requeued_entry_is_delivered_by_the_next_drain_and_the_requeue_is_audited(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    record = side.settle(0)
    store = OutboxStore(side.db)
    # Parked for a cause since fixed (say, a refusal whose reversal failed on a since-repaired row).
    store.park(store.pending(1)[0], "refused upstream but could not be set aside", side.clock.now())
    assert store.pending(10) == []
    ParkedEntries(side.db).requeue(record.msgid, "wang", side.clock.now())
    link = uplink(tmp_path / "terminal", server.url)
    try:
        report = worker(side, link).drain()
    finally:
        link.close()
    assert report.delivered == 1
    assert [h["msgid"] for h in upstream_settlements(server.url)] == [record.msgid]
    rows = [(r["actor"], r["action"]) for r in side.db.query("SELECT actor, action FROM audit")]
    assert ("technician:wang", "requeue") in rows
    assert audit.verify(side.db) == []


def test_doctor_fails_on_parked_entries_and_says_how_to_settle_them(tmp_path: Path, side: Side) -> None:
    from terminal.app import build_terminal
    from terminal.config import DEFAULT_CONFIG, load
    from terminal.diagnostics import outbox_check

    terminal = build_terminal(load(DEFAULT_CONFIG), tmp_path / "terminal", side.clock)
    try:
        side.settle(0)
        assert outbox_check(terminal).ok
        assert "none parked" in outbox_check(terminal).detail
        bad = _poisoned(side, 1, tmp_path / "terminal")
        check = outbox_check(terminal)
    finally:
        terminal.close()
    assert not check.ok
    assert f"1 parked ({bad}: msgid" in check.detail
    assert "medpay outbox requeue MSGID" in check.fix and "medpay outbox void MSGID" in check.fix
