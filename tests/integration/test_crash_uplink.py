"""kill -9 during settling and syncing, ≥ 20 times; after restart and sync the upstream holds every
settlement exactly once, in ledger order, and the ledger agrees with it.

The child process (this module run with -m) settles bills in a loop and drains the outbox every few
settlements, so kills land inside settlement transactions, between commit and outbox delivery, and
between an upstream commit and the local 'delivered' mark.
"""

from __future__ import annotations

import logging
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from terminal.store import audit
from terminal.store.db import open_db
from tests.integration.uplink_kit import (
    REPO,
    start_upstream,
    terminal_side,
    uplink,
    upstream_settlements,
    worker,
)

TOTAL = 500
KILLS = 20
DRAIN_EVERY = 7


def _child(data_dir: Path, total: int, url: str) -> int:
    """Settle until `total` settlements exist, draining every few; ends with a full drain."""
    side = terminal_side(data_dir)
    link = uplink(data_dir, url)
    sync = worker(side, link)
    done = next(iter(side.db.query("SELECT COUNT(*) AS n FROM settlements")))["n"]
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for index in range(int(done), total):
        side.settle(index)
        if index % DRAIN_EVERY == 0:
            sync.drain(max_entries=DRAIN_EVERY * 2)
    result = sync.drain()
    link.close()
    return 0 if not result.stopped_on else 1


def _spawn(data_dir: Path, url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.test_crash_uplink", str(data_dir), str(TOTAL), url],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )


def _settled(data_dir: Path) -> int:
    db = open_db(data_dir)
    try:
        return int(next(iter(db.query("SELECT COUNT(*) AS n FROM settlements")))["n"])
    finally:
        db.close()


def _wait_ready(proc: subprocess.Popen[str], timeout_s: float = 60.0) -> None:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    assert ready and proc.stdout.readline().strip() == "ready"


def test_kill_9_at_random_points_then_restart_and_sync_delivers_each_settlement_once(tmp_path: Path) -> None:
    up, server = start_upstream(tmp_path / "upstream")
    data_dir = tmp_path / "terminal"
    rng = random.Random(20251126)
    try:
        kills = 0
        # Bounded: a child that finished before its kill does not count, so try a few more times.
        for _ in range(3 * KILLS):
            if kills >= KILLS:
                break
            proc = _spawn(data_dir, server.url)
            _wait_ready(proc)
            # Random points: the child settles ~every few ms and drains every DRAIN_EVERY settlements;
            # short waits keep most of the work for later kills on a fast, quiet machine too.
            time.sleep(rng.uniform(0.0, 0.1))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
            proc.wait(timeout=30)
            assert proc.stdout is not None
            proc.stdout.close()
        progress = _settled(data_dir)
        final = _spawn(data_dir, server.url)
        _wait_ready(final)
        assert final.wait(timeout=240) == 0
        assert final.stdout is not None
        final.stdout.close()
        held = upstream_settlements(server.url)
    finally:
        server.stop()
        up.close()
    assert kills >= KILLS
    assert 0 < progress < TOTAL  # the kills landed while there was work in flight

    db = open_db(data_dir)
    try:
        ledger = [dict(r) for r in db.query("SELECT msgid, chrg_bchno, psn_part_amt FROM settlements")]
        order = [r["msgid"] for r in db.query("SELECT msgid FROM outbox ORDER BY seq")]
        states = {r["state"] for r in db.query("SELECT DISTINCT state FROM outbox")}
        differences = list(db.query("SELECT * FROM reconcile"))
        problems = audit.verify(db)
    finally:
        db.close()
    assert len(ledger) == TOTAL
    assert len({r["chrg_bchno"] for r in ledger}) == TOTAL
    assert [h["msgid"] for h in held] == order  # exactly once each, in ledger order
    assert states == {"delivered"}
    by_msgid = {h["msgid"]: h["result"]["setlinfo"] for h in held}
    assert all(by_msgid[r["msgid"]]["psn_part_amt"] == r["psn_part_amt"] for r in ledger)
    assert differences == []
    assert problems == []


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    raise SystemExit(_child(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
