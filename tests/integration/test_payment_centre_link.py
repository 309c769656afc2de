"""The centre's binding 2207 result fetched before charging (app/centre_link.py), reference upstream.

Online, the saga charges the centre's binding psn_cash_pay; the upstream down, the drain busy or the
link failing, it charges the local estimate marked as such, and the entry stays queued for the sync.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from devkit.serving import ServerThread
from devkit.upstream.state import Upstream
from terminal.app.centre_link import UplinkCentreLink
from terminal.payment_types import fen_of
from terminal.store.outbox import OutboxStore
from tests.integration.saga_kit import Rig, rig
from tests.integration.uplink_kit import set_faults, uplink


@pytest.fixture
def made(tmp_path: Path) -> Iterator[list[Rig]]:
    rigs: list[Rig] = []
    yield rigs
    for r in rigs:
        r.side.db.close()


def linked(tmp_path: Path, made: list[Rig], url: str, drain: threading.Lock | None = None) -> Rig:
    r = rig(tmp_path / "terminal")
    made.append(r)
    r.saga._centre = UplinkCentreLink(
        OutboxStore(r.side.db), lambda: uplink(tmp_path / "terminal", url, timeout=5.0), r.side.clock,
        r.side.ledger.allocate_msgid, drain or threading.Lock(),
    )  # fmt: skip
    return r


def states(r: Rig) -> list[str]:
    return [row["state"] for row in r.outbox()]


def test_online_the_centres_binding_cash_share_is_charged(
    tmp_path: Path, made: list[Rig], upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    r = linked(tmp_path, made, server.url)
    set_faults(server.url, differs="2.50")
    _, record, _ = r.settle(0), r.settle(1), r.settle(2)
    due = r.saga.decide(record.msgid)
    binding = OutboxStore(r.side.db).upstream_result(record.msgid)
    assert binding is not None and due.basis == "binding"
    assert due.fen == fen_of(Decimal(str(binding["setlinfo"]["psn_cash_pay"])))
    assert due.fen != due.estimate_fen  # the centre moved 2.50 to the patient: its figure is charged
    # Delivered in order: the earlier settlement first, then this one; the later one waits for the sync.
    assert states(r) == ["delivered", "delivered", "pending"]


def test_the_upstream_unreachable_charges_the_estimate_marked_so(tmp_path: Path, made: list[Rig]) -> None:
    r = linked(tmp_path, made, "http://127.0.0.1:9")  # discard port: refused at once
    record = r.settle(0)
    due = r.saga.decide(record.msgid)
    assert (due.basis, due.fen) == ("estimate", due.estimate_fen)
    assert states(r) == ["pending"]


def test_a_running_background_drain_is_not_waited_for(
    tmp_path: Path, made: list[Rig], upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    busy = threading.Lock()
    r = linked(tmp_path, made, server.url, busy)
    record = r.settle(0)
    with busy:  # the background sync is draining
        due = r.saga.decide(record.msgid)
    assert due.basis == "estimate"
    assert states(r) == ["pending"]
