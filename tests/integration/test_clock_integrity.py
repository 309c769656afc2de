"""Clock integrity against a real ledger and the reference upstream: a clock set back or off the
upstream's by more than `[uplink] max_clock_skew_s` settles nothing (issue 17 item 9)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from devkit.serving import ServerThread
from devkit.upstream.state import Upstream
from terminal.app import sync_once
from terminal.app.clock_guard import SettleChecks, clock_guard, clock_line
from terminal.clock import CST
from terminal.config import DEFAULT_CONFIG, load
from terminal.errors import ClockBackwardsError, ClockSkewError
from terminal.store.clock_facts import clock_facts
from tests.fakes import SteppingClock
from tests.integration.uplink_kit import Side, set_faults, terminal_side


def _guarded(data_dir: Path, clock: SteppingClock) -> Side:
    """The uplink kit's checkout side with the root's settle checks (the clock guard) in front."""
    side = terminal_side(data_dir, clock)
    side.checkout._store = SettleChecks(clock_guard(side.db, clock, 300))
    return side


def _count(side: Side) -> int:
    return int(next(iter(side.db.query("SELECT COUNT(*) AS n FROM settlements")))["n"])


def test_a_clock_set_back_an_hour_settles_nothing_until_it_is_right_again(tmp_path: Path) -> None:
    clock = SteppingClock()
    side = _guarded(tmp_path / "data", clock)
    side.settle(1)
    clock.at -= timedelta(hours=1)  # someone sets the terminal's clock back
    with pytest.raises(ClockBackwardsError, match="set back"):
        side.settle(2)
    assert _count(side) == 1, "nothing was recorded"
    clock.at += timedelta(hours=1, minutes=1)
    side.settle(2)
    assert _count(side) == 2


@pytest.fixture
def real_time_clock() -> SteppingClock:
    """A terminal clock starting at this moment: the reference upstream's answers carry real time."""
    return SteppingClock(datetime.now(CST))


def _sync(side: Side, data_dir: Path, url: str, clock: SteppingClock) -> None:
    config = load(DEFAULT_CONFIG)
    report, _ = sync_once(
        side.db, data_dir, config.terminal, config.uplink, clock, side.ledger.allocate_msgid, url
    )
    assert not report.stopped_on, report.stopped_on


def test_every_sync_measures_the_upstreams_clock_and_a_skew_past_the_limit_refuses_settling(
    tmp_path: Path, upstream: tuple[Upstream, ServerThread], real_time_clock: SteppingClock
) -> None:
    _, server = upstream
    data_dir = tmp_path / "data"
    side = _guarded(data_dir, real_time_clock)
    guard = clock_guard(side.db, real_time_clock, 300)
    _sync(side, data_dir, server.url, real_time_clock)
    assert abs(clock_facts(side.db).offset_s or 0.0) < 300
    assert "from the upstream's at the last sync" in clock_line(guard, side.db)
    side.settle(1)

    set_faults(server.url, clock_skew_s=3600)  # the upstream's clock is an hour ahead of ours
    _sync(side, data_dir, server.url, real_time_clock)
    assert (clock_facts(side.db).offset_s or 0.0) > 3000
    with pytest.raises(ClockSkewError, match="behind the upstream's"):
        side.settle(2)
    with pytest.raises(ClockSkewError):
        clock_line(guard, side.db)  # readiness and doctor say so too
    assert _count(side) == 1

    set_faults(server.url, clock_skew_s=0)  # the technician sets the time; the next sync clears it
    _sync(side, data_dir, server.url, real_time_clock)
    side.settle(2)
    assert _count(side) == 2


def test_the_root_checkout_carries_the_clock_guard(tmp_path: Path) -> None:
    from terminal.app import build_terminal
    from terminal.store.keys import create_key

    create_key(tmp_path / "data")
    clock = SteppingClock()
    terminal = build_terminal(load(DEFAULT_CONFIG), tmp_path / "data", clock)
    try:
        with terminal.db.conn:
            terminal.db.execute(
                "INSERT INTO counters (name, value) VALUES ('clock_upstream_offset_ms', 900000)"
            )
        with pytest.raises(ClockSkewError):
            terminal.checkout.settle(None, None)  # type: ignore[arg-type]  # refused before either is read
    finally:
        terminal.close()
