"""Offline limits at checkout: settle inside them (and say so), decline beyond them, charge nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from terminal.cli.receipt import render_receipt
from terminal.domain import Match
from terminal.errors import OfflineLimitError
from terminal.pipeline.offline import OFFLINE_NOTE, OfflineLimits
from terminal.store import audit
from terminal.store.outbox import OutboxStore
from tests.integration.uplink_kit import PEOPLE, Side, bill, terminal_side

LIMITS = OfflineLimits()  # 500.00 per settlement, 50 queued, 72 h since the last sync, offline after 10 min
PERSON = PEOPLE[0]


def _side(tmp_path: Path, limits: OfflineLimits = LIMITS) -> Iterator[Side]:
    side = terminal_side(tmp_path / "terminal", offline=limits)
    try:
        yield side
    finally:
        side.db.close()


@pytest.fixture
def side(tmp_path: Path) -> Iterator[Side]:
    """A terminal with an upstream configured, last heard from (and fully synced) at the clock's start."""
    yield from _side(tmp_path)


def _heard_from_upstream(side: Side, ago: timedelta) -> None:
    """A complete sync `ago` before now (what the sync worker writes after a full drain)."""
    OutboxStore(side.db).note_contact(side.clock.at - ago, synced=True)


def _nothing_written(side: Side) -> bool:
    counts = [
        next(iter(side.db.query(f"SELECT COUNT(*) AS n FROM {table}")))["n"]
        for table in ("settlements", "outbox", "audit", "accumulators")
    ]
    return counts == [0, 0, 0, 0]


def test_online_settlement_is_not_marked_offline(side: Side) -> None:
    _heard_from_upstream(side, timedelta(minutes=1))
    record = side.settle(0)
    assert not record.offline
    assert side.ledger.settlement(record.msgid)["offline"] is False
    priced = side.checkout.price(bill(3), PERSON.psn_no)
    assert OFFLINE_NOTE not in render_receipt(priced, record)


def test_inside_the_limits_settles_offline_and_the_receipt_says_so(side: Side) -> None:
    _heard_from_upstream(side, timedelta(hours=5))
    priced = side.checkout.price(bill(0), PERSON.psn_no)
    assert side.checkout.offline_check(priced).offline
    record = side.checkout.settle(priced, Match(PERSON.psn_no, "face-1:N"))
    assert record.offline
    assert side.ledger.settlement(record.msgid)["offline"] is True
    assert OFFLINE_NOTE in render_receipt(priced, record)
    assert OutboxStore(side.db).counts() == {"pending": 1}
    assert audit.verify(side.db) == []


def test_a_settlement_stuck_in_the_outbox_means_offline_even_after_a_recent_sign_in(side: Side) -> None:
    _heard_from_upstream(side, timedelta(minutes=1))
    assert not side.settle(0).offline
    side.clock.at += timedelta(minutes=30)
    # The worker still reaches the upstream (sign-in answered a minute ago) but delivers nothing.
    OutboxStore(side.db).note_contact(side.clock.at - timedelta(minutes=1), synced=False)
    assert side.settle(1).offline


def test_beyond_the_amount_limit_declines_and_charges_nothing(tmp_path: Path) -> None:
    for side in _side(tmp_path, replace(LIMITS, max_amount=Decimal("100.00"))):
        _heard_from_upstream(side, timedelta(hours=5))
        priced = side.checkout.price(bill(0), PERSON.psn_no)
        with pytest.raises(OfflineLimitError, match="nothing was charged") as declined:
            side.checkout.settle(priced, Match(PERSON.psn_no, "face-1:N"))
        assert "单笔超过离线限额100.00元" in str(declined.value)
        assert "未扣费" in str(declined.value)
        assert _nothing_written(side)
        # The same bill once the upstream answers again: the limit is an offline limit only.
        _heard_from_upstream(side, timedelta(minutes=1))
        assert not side.checkout.settle(priced, Match(PERSON.psn_no, "face-1:N")).offline


def test_beyond_the_count_limit_declines_and_charges_nothing(tmp_path: Path) -> None:
    for side in _side(tmp_path, replace(LIMITS, max_count=2)):
        _heard_from_upstream(side, timedelta(hours=5))
        assert side.settle(0).offline and side.settle(1).offline
        with pytest.raises(OfflineLimitError, match="离线结算已达2笔上限"):
            side.settle(2)
        assert OutboxStore(side.db).counts() == {"pending": 2}
        assert next(iter(side.db.query("SELECT COUNT(*) AS n FROM settlements")))["n"] == 2


def test_too_long_since_the_last_sync_declines_and_charges_nothing(side: Side) -> None:
    _heard_from_upstream(side, timedelta(hours=73))
    with pytest.raises(OfflineLimitError, match="超过72小时未同步"):
        side.settle(0)
    assert _nothing_written(side)


def test_never_synced_with_a_configured_upstream_declines(side: Side) -> None:
    with pytest.raises(OfflineLimitError, match="nothing was charged"):
        side.settle(0)
    assert _nothing_written(side)


def test_without_an_upstream_configured_there_are_no_offline_limits(tmp_path: Path) -> None:
    # The embedded demo default: never synced, nothing to be offline from; large bills still settle.
    side = terminal_side(tmp_path / "terminal")
    try:
        records = [side.settle(i) for i in range(3)]
        assert [r.offline for r in records] == [False, False, False]
        assert OutboxStore(side.db).counts() == {"pending": 3}
    finally:
        side.db.close()
