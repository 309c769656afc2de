"""The crash test's child process: settles bills, drains the outbox every few, reports each step.

Run as ``python -m tests.integration.crash_child DATA_DIR TOTAL HOLD_AT URL``. It resumes from the
settlements already in DATA_DIR, writes ``ready <done>``, then ``settled <count> <msgid>`` after each
settlement commits, and drains every DRAIN_EVERY settlements. At HOLD_AT settlements (below TOTAL) it
writes ``holding`` and waits on stdin, so a parent killing it by progress always finds it alive with
work left; at TOTAL it drains everything and exits 0 (1 when the drain stopped early). Phase hooks
(tests/integration/crash_hooks.py) make it SIGKILL itself at a phase named in the environment.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TextIO

from tests.integration.crash_hooks import AFTER_COMMIT, install
from tests.integration.uplink_kit import terminal_side, uplink, worker

DRAIN_EVERY = 7


def run(data_dir: Path, total: int, hold_at: int, url: str, out: TextIO) -> int:
    """Settle up to min(hold_at, total), draining every few; see the module docstring for the protocol."""
    hooks = install(out)
    side = terminal_side(data_dir)
    link = uplink(data_dir, url)
    sync = worker(side, link)
    done = int(next(iter(side.db.query("SELECT COUNT(*) AS n FROM settlements")))["n"])
    out.write(f"ready {done}\n")
    out.flush()
    for index in range(done, min(hold_at, total)):
        record = side.settle(index)
        out.write(f"settled {index + 1} {record.msgid}\n")
        out.flush()
        if index % DRAIN_EVERY == 0:
            hooks.hit(AFTER_COMMIT, record.msgid)
            sync.drain(max_entries=DRAIN_EVERY * 2)
    if hold_at < total:
        out.write("holding\n")
        out.flush()
        sys.stdin.read()  # the parent kills this process; EOF only if the parent went away
        return 2
    result = sync.drain()
    link.close()
    return 0 if not result.stopped_on else 1


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    folder, count, hold, base_url = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    raise SystemExit(run(folder, count, hold, base_url, sys.stdout))
