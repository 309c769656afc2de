"""The uplink against the real reference upstream on loopback: delivery, faults, reconciliation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devkit.serving import ServerThread
from devkit.upstream.state import Upstream
from terminal.app import sync_once, uplink_backoff
from terminal.cli.sync_report import describe, reconciled_lines
from terminal.config import DEFAULT_CONFIG, UplinkSection, load
from terminal.errors import UplinkRefused
from terminal.store.db import immediate
from terminal.store.outbox import OutboxStore
from terminal.store.payment_refusals import not_settled
from terminal.store.reconcile import local_setlinfo, report
from terminal.uplink.signing import seal_input, sign_envelope
from terminal.uplink.sm_crypto import sm2_key
from terminal.uplink.wire import CALL_PATH
from tests.integration.uplink_kit import (
    FaultyNetwork,
    Side,
    set_faults,
    signed_in_by_hand,
    terminal_side,
    uplink,
    upstream_settlements,
    worker,
)


@pytest.fixture
def side(tmp_path: Path) -> Iterator[Side]:
    """The terminal's settlement side over its own SQLite file."""
    s = terminal_side(tmp_path / "terminal")
    try:
        yield s
    finally:
        s.db.close()


def _ledger_msgids(side: Side) -> list[str]:
    return [r["msgid"] for r in side.db.query("SELECT msgid FROM outbox ORDER BY seq")]


def test_settlements_are_delivered_in_order_with_the_binding_result(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    records = [side.settle(i) for i in range(6)]
    link = uplink(tmp_path / "terminal", server.url)
    try:
        result = worker(side, link).drain()
    finally:
        link.close()
    assert (result.delivered, result.differences, result.stopped_on) == (6, 0, "")
    held = upstream_settlements(server.url)
    assert [h["msgid"] for h in held] == [r.msgid for r in records]
    stored = OutboxStore(side.db).upstream_result(records[0].msgid)
    assert stored is not None
    assert stored["setlinfo"]["setl_id"].startswith("S")
    assert stored["setlinfo"]["psn_part_amt"] == str(records[0].psn_part_amt)
    assert OutboxStore(side.db).counts() == {"delivered": 6}


def test_lost_response_after_commit_is_recovered_by_query_without_duplicate(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    records = [side.settle(i) for i in range(3)]
    network = FaultyNetwork(lose_replies=1)
    link = uplink(tmp_path / "terminal", server.url, transport=network.transport)
    try:
        result = worker(side, link).drain()
    finally:
        link.close()
        network.close()
    assert network.lose_replies == 0  # the fault fired
    assert result.delivered == 3
    assert result.recovered_by_query == 1
    assert network.settlement_calls == 3  # the lost one was asked about, not sent again
    held = upstream_settlements(server.url)
    assert [h["msgid"] for h in held] == [r.msgid for r in records]


def test_http_500_before_commit_is_retried_and_delivered_once(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    records = [side.settle(i) for i in range(3)]
    set_faults(server.url, http500=3)
    link = uplink(tmp_path / "terminal", server.url)
    try:
        result = worker(side, link).drain()
    finally:
        link.close()
    assert result.delivered == 3
    assert result.retries >= 3
    assert [h["msgid"] for h in upstream_settlements(server.url)] == [r.msgid for r in records]


def test_slow_upstream_commits_after_timeout_and_next_drain_takes_it_without_resending(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    record = side.settle(0)
    network = FaultyNetwork(hold=1)
    link = uplink(tmp_path / "terminal", server.url, transport=network.transport)
    try:
        first = worker(side, link, max_attempts=1).drain()
        assert first.delivered == 0
        assert first.stopped_on
        pending = OutboxStore(side.db).pending(10)
        assert pending[0].outcome_unknown
        assert upstream_settlements(server.url) == []
        # The upstream gets to the timed-out request only now, after the client gave up on it.
        (landed,) = network.land_held()
        assert landed.status_code == 200
        second = worker(side, link).drain()
    finally:
        link.close()
        network.close()
    assert second.delivered == 1
    assert second.recovered_by_query == 1
    assert network.settlement_calls == 1  # taken by query, never resent
    assert [h["msgid"] for h in upstream_settlements(server.url)] == [record.msgid]


def test_down_upstream_keeps_the_queue_and_delivers_it_when_back(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    records = [side.settle(i) for i in range(4)]
    set_faults(server.url, down=True)
    link = uplink(tmp_path / "terminal", server.url)
    try:
        down = worker(side, link, max_attempts=3).drain()
        assert down.delivered == 0
        assert "unreachable" in down.stopped_on
        set_faults(server.url, down=False)
        back = worker(side, link).drain()
    finally:
        link.close()
    assert back.delivered == 4
    assert [h["msgid"] for h in upstream_settlements(server.url)] == [r.msgid for r in records]


def test_differing_amount_is_recorded_field_by_field_and_daily_totals_disagree(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    side.settle(0)
    link = uplink(tmp_path / "terminal", server.url)
    try:
        w = worker(side, link)
        w.drain()
        set_faults(server.url, differs="2.50")
        record = side.settle(2)
        result = w.drain()
        totals = w.compare_totals(record.setl_time.date().isoformat())
    finally:
        link.close()
    assert result.differences == 4
    rows = report(side.db)
    assert {r["msgid"] for r in rows} == {record.msgid}
    fields = {r["field"]: (r["local"], r["upstream"]) for r in rows}
    assert set(fields) == {"hifp_pay", "fund_pay_sumamt", "psn_part_amt", "psn_cash_pay"}
    local, theirs = fields["psn_part_amt"]
    assert float(theirs) - float(local) == pytest.approx(2.50)
    assert totals["stmt_rslt"] == "1"


def test_daily_totals_agree_when_nothing_differs(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    record = side.settle(0)
    side.settle(1)
    link = uplink(tmp_path / "terminal", server.url)
    try:
        w = worker(side, link)
        w.drain()
        totals = w.compare_totals(record.setl_time.date().isoformat())
    finally:
        link.close()
    assert totals["stmt_rslt"] == "0"
    stored = list(side.db.query("SELECT stmt_rslt FROM upstream_totals"))
    assert stored == [{"stmt_rslt": "0"}]


def test_reverse_and_correct_by_original_msgid(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    first, second = side.settle(0), side.settle(1)
    link = uplink(tmp_path / "terminal", server.url)
    try:
        worker(side, link).drain()
        now = side.clock.now()
        reversal = link.reverse(side.ledger.allocate_msgid(now), first.msgid, first.psn_no, now)
        assert reversal["setlinfo"]["medfee_sumamt"] == f"-{first.medfee_sumamt}"
        with pytest.raises(UplinkRefused):
            link.reverse(side.ledger.allocate_msgid(now), first.msgid, first.psn_no, now)
        assert link.correct(side.ledger.allocate_msgid(now), second.msgid, "2207", second.psn_no, now)
        assert not link.correct(side.ledger.allocate_msgid(now), "H43030200001209901010000" + "0001", "2207",
                                second.psn_no, now)  # fmt: skip
    finally:
        link.close()
    states = {h["msgid"]: h["state"] for h in upstream_settlements(server.url)}
    assert states == {first.msgid: "reversed", second.msgid: "corrected"}


def test_resent_msgid_returns_the_same_answer_and_settles_once(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    record = side.settle(0)
    link = uplink(tmp_path / "terminal", server.url)
    try:
        now = side.clock.now()
        link.sign_in(side.ledger.allocate_msgid(now), now)
        answers = [link.call(record.envelope).output for _ in range(3)]
    finally:
        link.close()
    assert answers[0] == answers[1] == answers[2]
    assert len(upstream_settlements(server.url)) == 1


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = httpx.post(f"{url}{CALL_PATH}", json=body, timeout=5)
    return dict(reply.json())


def test_altered_or_foreign_signed_envelope_is_refused(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    record = side.settle(0)
    now = side.clock.now()
    sign_no, data_key = signed_in_by_hand(
        server.url, tmp_path / "terminal", side.ledger.allocate_msgid(now), now
    )
    sealed = seal_input({**record.envelope, "sign_no": sign_no}, data_key)
    signed = sign_envelope(sealed, sm2_key(tmp_path / "terminal"))
    altered = json.loads(json.dumps(signed))
    altered["inf_time"] = "2025-06-03 09:31:00"
    answer = _post(server.url, altered)
    assert answer["infcode"] == -1
    assert "signature" in answer["err_msg"]
    foreign = sign_envelope(sealed, sm2_key(tmp_path / "other"))
    assert _post(server.url, foreign)["infcode"] == -1
    assert upstream_settlements(server.url) == []
    assert _post(server.url, signed)["infcode"] == 0


def test_stale_sign_no_leads_to_a_fresh_sign_in_not_a_refusal(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    record = side.settle(0)
    link = uplink(tmp_path / "terminal", server.url)
    now = side.clock.now()
    stale = link.sign_in(side.ledger.allocate_msgid(now), now)
    # The same terminal signs in again elsewhere: the upstream now holds another sign_no (and data key).
    signed_in_by_hand(server.url, tmp_path / "terminal", side.ledger.allocate_msgid(now), now)
    try:
        result = worker(side, link).drain()
    finally:
        link.close()
    assert result.delivered == 1
    assert result.refused == []
    assert result.retries == 1  # the 401 for the stale sign_no, then a fresh sign-in
    assert link.sign_no != stale
    assert [h["msgid"] for h in upstream_settlements(server.url)] == [record.msgid]


def test_sync_once_from_config_drains_compares_totals_and_describes_differences(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    set_faults(server.url, differs="1.00")
    record = side.settle(2)
    section = UplinkSection(url=server.url, backoff_base_s=0.01, backoff_cap_s=0.02)
    terminal = load(DEFAULT_CONFIG).terminal
    result, totals = sync_once(
        side.db,
        tmp_path / "terminal",
        terminal,
        section,
        side.clock,
        side.ledger.allocate_msgid,
        backoff=uplink_backoff(section),
        day=record.setl_time.date().isoformat(),
    )
    assert result.delivered == 1
    assert totals is not None and totals["stmt_rslt"] == "1"
    local = local_setlinfo(side.db, record.msgid)
    shown = reconciled_lines(record.msgid, local, OutboxStore(side.db).upstream_result(record.msgid))
    assert shown[0].startswith(f"{record.msgid}: upstream setl_id S")
    assert any(line.strip().startswith("psn_part_amt") and "differs" in line for line in shown)
    lines = describe(result, side.db)
    assert lines[0].startswith("delivered 1")
    assert any("psn_part_amt" in line and "(binding)" in line for line in lines)


def test_daily_totals_agree_after_a_reversal_the_upstream_also_took(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    kept, undone = side.settle(0), side.settle(1)
    link = uplink(tmp_path / "terminal", server.url)
    try:
        w = worker(side, link)
        w.drain()
        now = side.clock.now()
        link.reverse(side.ledger.allocate_msgid(now), undone.msgid, undone.psn_no, now)
        with immediate(side.db):  # the ledger's side of the same reversal: the settlement stops standing
            not_settled(side.db, undone.msgid, "reversed", now, "test")
        totals = w.compare_totals(kept.setl_time.date().isoformat())
    finally:
        link.close()
    # The upstream counts only settlements that stand; so must the terminal's 3201 input.
    assert totals["stmt_rslt"] == "0", totals
