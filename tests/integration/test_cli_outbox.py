"""`medpay sync` with a poisoned entry (exit code, no traceback) and `medpay outbox list | requeue | void`."""

from __future__ import annotations

from pathlib import Path

from devkit.serving import ServerThread
from devkit.upstream.state import Upstream
from terminal.store import audit
from terminal.store.db import open_db
from tests.integration.test_cli import medpay
from tests.integration.uplink_kit import terminal_side, upstream_settlements


def test_sync_parks_a_poisoned_entry_and_a_technician_voids_it(
    tmp_path: Path, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    data = tmp_path / "data"
    good = terminal_side(data)
    first = good.settle(0).msgid
    # A 32-character msgid queued without the wire check, as a release before issue 15 did (issue 15's repro).
    poisoned = terminal_side(data, good.clock, msgid_prefix="H4303020000129", check_envelopes=False)
    bad = poisoned.settle(1).msgid
    poisoned.db.close()
    last = good.settle(2).msgid
    good.db.close()

    synced = medpay("sync", "--upstream", server.url, data_dir=data)
    assert "Traceback" not in synced.stderr, synced.stderr
    assert synced.returncode == 2, synced.stdout + synced.stderr
    assert "delivered 2" in synced.stdout and "parked 1" in synced.stdout
    assert "medpay outbox list" in synced.stdout
    assert [h["msgid"] for h in upstream_settlements(server.url)] == [first, last]

    listed = medpay("outbox", "list", data_dir=data)
    assert listed.returncode == 0
    assert f"parked {bad}" in listed.stdout and "msgid" in listed.stdout

    requeued = medpay("outbox", "requeue", bad, data_dir=data)
    assert requeued.returncode == 1 and "Traceback" not in requeued.stderr
    assert "[OUTBOX_ENTRY]" in requeued.stderr and "void it" in requeued.stderr

    voided = medpay("outbox", "void", bad, "--reason", "msgid too long", "--operator", "li", data_dir=data)
    assert voided.returncode == 0, voided.stderr
    assert f"voided {bad}" in voided.stdout and "no parked entries" in voided.stdout

    again = medpay("sync", "--upstream", server.url, data_dir=data)
    assert again.returncode == 0, again.stdout + again.stderr
    db = open_db(data)
    try:
        assert audit.verify(db) == []
        row = next(iter(db.query("SELECT actor FROM audit WHERE action = 'void' AND subject = ?", [bad])))
        assert row["actor"] == "technician:li"
    finally:
        db.close()
