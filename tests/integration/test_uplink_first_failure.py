"""Offline from the first failed delivery or sign-in: limits at once, unconfirmed receipts say offline.

Real SQLite and the real reference upstream on loopback; a timeout is injected with httpx MockTransport.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from devkit.serving import ServerThread
from devkit.upstream.state import Upstream
from terminal.config import DEFAULT_CONFIG, load
from terminal.domain import INFNO_SIGN_IN
from terminal.errors import OfflineLimitError
from terminal.pipeline.offline import OfflineLimits
from terminal.store import audit
from terminal.store.outbox import OutboxStore
from terminal.uplink.client import HttpUplink
from terminal.uplink.registration import identity
from terminal.uplink.signing import uplink_keys
from tests.integration.uplink_kit import (
    PEOPLE,
    Side,
    bill,
    set_faults,
    terminal_side,
    uplink,
    upstream_settlements,
    worker,
)

# The sample bill is well above 100.00: offline it is declined, online it settles.
LIMITS = replace(OfflineLimits(), max_amount=Decimal("100.00"))


@pytest.fixture
def side(tmp_path: Path) -> Iterator[Side]:
    """A terminal with an upstream configured and the offline limits of LIMITS."""
    s = terminal_side(tmp_path / "terminal", offline=LIMITS)
    try:
        yield s
    finally:
        s.db.close()


def _offline_flags(side: Side) -> dict[str, bool]:
    rows = side.db.query("SELECT msgid, offline FROM settlements")
    return {str(r["msgid"]): bool(r["offline"]) for r in rows}


def _synced(side: Side, link: HttpUplink) -> None:
    report = worker(side, link).drain()
    assert report.stopped_on == ""


def test_the_first_failed_delivery_puts_the_terminal_under_the_offline_limits_at_once(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    link = uplink(tmp_path / "terminal", server.url)
    try:
        _synced(side, link)  # heard from the upstream a moment ago: online
        online = [side.settle(i) for i in range(2)]  # recorded online, not yet delivered
        assert [r.offline for r in online] == [False, False]
        set_faults(server.url, down=True)
        failed = worker(side, link, max_attempts=1).drain()
        assert failed.delivered == 0 and "not delivered" in failed.stopped_on
        # Seconds after the last answer, not offline_after_s (600 s) later: the limits apply now.
        facts = OutboxStore(side.db).uplink_facts()
        assert facts.down_since is not None
        assert side.clock.now() - facts.last_contact < timedelta(minutes=1)  # type: ignore[operator]
        with pytest.raises(OfflineLimitError, match=r"单笔超过离线限额100\.00元"):
            side.settle(2)
        # Both settlements the upstream has not confirmed now say offline on their receipts.
        assert _offline_flags(side) == {r.msgid: True for r in online}
        marked = next(iter(side.db.query("SELECT detail FROM audit WHERE action = 'offline'")))
        assert json.loads(marked["detail"])["marked_offline"] == [r.msgid for r in online]

        set_faults(server.url, down=False)
        _synced(side, link)
    finally:
        link.close()
    # The upstream answered again: online, the large bill settles, and nothing was lost or doubled.
    assert OutboxStore(side.db).uplink_facts().down_since is None
    again = side.settle(2)
    assert not again.offline
    assert [h["msgid"] for h in upstream_settlements(server.url)] == [r.msgid for r in online]
    assert audit.verify(side.db) == []


def test_a_failed_sign_in_is_a_failed_probe_and_offlines_too(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    link = uplink(tmp_path / "terminal", server.url)
    try:
        _synced(side, link)
    finally:
        link.close()
    recorded = side.settle(0)
    set_faults(server.url, down=True)
    fresh = uplink(tmp_path / "terminal", server.url)  # not signed in: the drain starts with 9001
    try:
        report = worker(side, fresh, max_attempts=1).drain()
    finally:
        fresh.close()
    assert "sign-in" in report.stopped_on
    assert OutboxStore(side.db).uplink_facts().down_since is not None
    assert _offline_flags(side) == {recorded.msgid: True}


def test_a_timeout_is_a_failure_too_without_any_real_time_margin(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    link = uplink(tmp_path / "terminal", server.url)
    try:
        _synced(side, link)
    finally:
        link.close()
    recorded = side.settle(0)
    real = httpx.HTTPTransport()

    def times_out(request: httpx.Request) -> httpx.Response:
        # Sign-in gets through (it agrees the data key the deliveries are sealed with); nothing else does.
        if json.loads(request.content)["infno"] == INFNO_SIGN_IN:
            return real.handle_request(request)
        raise httpx.ReadTimeout("injected", request=request)

    config = load(DEFAULT_CONFIG).terminal
    key = uplink_keys(tmp_path / "terminal")
    silent = HttpUplink(server.url, key, identity(config), transport=httpx.MockTransport(times_out))
    now = side.clock.now()
    silent.sign_in(side.ledger.allocate_msgid(now), now)
    try:
        report = worker(side, silent, max_attempts=2).drain()
    finally:
        silent.close()
        real.close()
    assert report.delivered == 0 and report.retries == 2
    assert OutboxStore(side.db).pending(1)[0].outcome_unknown
    assert OutboxStore(side.db).uplink_facts().down_since is not None
    assert _offline_flags(side) == {recorded.msgid: True}
    assert side.checkout.offline_check(side.checkout.price(bill(9), PEOPLE[0].psn_no)).offline
