"""The signed audit chain head goes upstream with every sync; the upstream refuses one that goes back.

Issue 17, item 2: an attacker without the device key is caught locally (tests/unit/store/
test_audit_tamper.py); one who holds it passes the local check and is caught only here, by the
reference upstream comparing the head with the heads it received.
"""

from __future__ import annotations

from pathlib import Path

from devkit.serving import ServerThread
from devkit.upstream.audit_heads import flagged
from devkit.upstream.state import Upstream
from terminal.app.audit_heads import HeadReporter
from terminal.pipeline.sync import SyncWorker
from terminal.store import audit
from terminal.store.audit_check import verify_all
from terminal.store.audit_heads import AuditHeadStore
from terminal.uplink.client import HttpUplink
from tests.integration.uplink_kit import Side, terminal_side, uplink, worker
from tests.unit.store import audit_attacks as attack


def _syncing(side: Side, link: HttpUplink) -> SyncWorker:
    base = worker(side, link)
    base._report_head = HeadReporter(AuditHeadStore(side.db), link, side.clock, side.ledger.allocate_msgid)
    return base


def _forget(side: Side, settled: int) -> None:
    """What a key holder removes besides the audit rows: the settlements and outbox entries they named."""
    side.db.execute("DELETE FROM settlements WHERE rowid > ?", [settled])
    side.db.execute("DELETE FROM outbox WHERE seq > ?", [settled])
    side.db.conn.commit()


def test_every_sync_reports_the_head_and_the_upstream_keeps_it(
    tmp_path: Path, upstream: tuple[Upstream, ServerThread]
) -> None:
    up, server = upstream
    side = terminal_side(tmp_path / "t")
    link = uplink(tmp_path / "t", server.url)
    try:
        side.settle(0)
        first = _syncing(side, link).drain()
        side.settle(1)
        second = _syncing(side, link).drain()
    finally:
        link.close()
    assert first.head_refused == second.head_refused == ""
    store = AuditHeadStore(side.db)
    held = [tuple(r) for r in up.conn.execute("SELECT seq, mac, verdict FROM audit_heads ORDER BY id")]
    assert [h[2] for h in held] == ["accepted", "accepted"]
    assert held[-1][:2] == (store.head().seq, store.head().mac)
    assert store.last_report() is not None and store.last_report().accepted  # type: ignore[union-attr]


def test_a_key_holder_who_truncates_passes_locally_and_is_refused_upstream(
    tmp_path: Path, upstream: tuple[Upstream, ServerThread]
) -> None:
    up, server = upstream
    side = terminal_side(tmp_path / "t")
    link = uplink(tmp_path / "t", server.url)
    try:
        side.settle(0)
        assert _syncing(side, link).drain().delivered == 1
        for n in range(2):  # records the attacker wants gone (a technician's voids, say)
            with side.db.atomic():
                audit.append(side.db, side.clock.now(), "technician:x", "void", f"m{n}", {"n": n})
        assert _syncing(side, link).drain().head_refused == ""
        reported = AuditHeadStore(side.db).head().seq
        # Delete the newest 2, re-MAC with the key, move the anchor (and AUTOINCREMENT's record) back.
        attack.delete_newest(side.db, 2)
        attack.rekey_with_the_key(side.db)
        side.db.conn.commit()
        assert verify_all(side.db) == []  # the local check cannot tell
        report = _syncing(side, link).drain()
    finally:
        link.close()
    assert f"is behind seq {reported}" in report.head_refused
    assert [f["verdict"] for f in flagged(up)] == ["rollback"]
    last = AuditHeadStore(side.db).last_report()
    assert last is not None and not last.accepted and "behind" in last.reason


def test_a_key_holder_who_rewrites_history_and_appends_past_the_head_is_refused_as_a_fork(
    tmp_path: Path, upstream: tuple[Upstream, ServerThread]
) -> None:
    up, server = upstream
    side = terminal_side(tmp_path / "t")
    link = uplink(tmp_path / "t", server.url)
    try:
        side.settle(0)
        side.settle(1)
        assert _syncing(side, link).drain().head_refused == ""
        side.db.execute("UPDATE audit SET subject = 'someone else' WHERE seq = 1")
        side.db.execute("UPDATE settlements SET psn_no = 'someone else' WHERE rowid = 1")
        attack.rekey_with_the_key(side.db)
        side.db.execute("DELETE FROM audit_head_reports")  # and the terminal's own record of its reports
        side.db.conn.commit()
        assert verify_all(side.db) == []
        for i in range(2, 5):
            side.settle(i)  # the head moves past the one the upstream holds
        report = _syncing(side, link).drain()
    finally:
        link.close()
    assert "differs from the head received" in report.head_refused
    assert [f["verdict"] for f in flagged(up)] == ["fork"]


def test_deleting_everything_with_the_key_is_refused_upstream(
    tmp_path: Path, upstream: tuple[Upstream, ServerThread]
) -> None:
    up, server = upstream
    side = terminal_side(tmp_path / "t")
    link = uplink(tmp_path / "t", server.url)
    try:
        for i in range(3):
            side.settle(i)
        assert _syncing(side, link).drain().head_refused == ""
        attack.delete_all(side.db)
        _forget(side, 0)
        side.db.execute("DELETE FROM audit_head_reports")
        side.db.conn.commit()
        assert verify_all(side.db) == []  # an empty log with nothing left to contradict it
        report = _syncing(side, link).drain()
    finally:
        link.close()
    assert "is behind seq" in report.head_refused
    assert [f["verdict"] for f in flagged(up)] == ["rollback"]


def test_a_refused_head_is_shown_by_doctor_and_readiness(tmp_path: Path) -> None:
    from terminal.app import build_terminal
    from terminal.config import DEFAULT_CONFIG, load
    from terminal.diagnostics import audit_head_check
    from terminal.domain import AuditHead
    from tests.fakes import FixedClock

    terminal = build_terminal(load(DEFAULT_CONFIG), tmp_path / "data", FixedClock())
    try:
        store = AuditHeadStore(terminal.db)
        assert audit_head_check(terminal).ok
        store.note(AuditHead(3, "ab" * 32), terminal.clock.now(), accepted=True)
        assert audit_head_check(terminal).ok
        store.note(AuditHead(1, "cd" * 32), terminal.clock.now(), accepted=False, reason="behind seq 3")
        check = audit_head_check(terminal)
        assert not check.ok and "REFUSED" in check.detail and "behind seq 3" in check.detail
        # The refusal is audited too: the terminal's own record of having been flagged.
        actions = [r["action"] for r in terminal.db.query("SELECT action FROM audit")]
        assert actions[-1] == "audit-head-refused"
    finally:
        terminal.close()
