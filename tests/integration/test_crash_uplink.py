"""kill -9 during settling and syncing, ≥ 20 times; after restart and sync the upstream holds every
settlement exactly once, in ledger order, and the ledger agrees with it.

Kills are placed by progress, never by wall time. The child (tests/integration/crash_child.py) reports
each committed settlement; a progress kill picks, from a seeded RNG, how many more settlements to let
through inside this run's share of the budget, and SIGKILLs the child once it reports that many; the
child never runs past its share, so every kill finds work in flight. Phase kills make the child kill
itself inside the ledger transaction, after a commit before the drain, and after an upstream commit
before the local delivered mark (tests/integration/crash_hooks.py); each must be hit, and the state it
leaves is checked before the next run starts.
"""

from __future__ import annotations

import io
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from devkit.serving import ServerThread
from terminal.store import audit
from terminal.store.db import open_db
from tests.integration.crash_child import DRAIN_EVERY
from tests.integration.crash_hooks import (
    AFTER_COMMIT,
    AFTER_UPSTREAM_COMMIT,
    AT_ENV,
    IN_LEDGER_TXN,
    PHASE_ENV,
    PHASES,
    PhaseHooks,
)
from tests.integration.uplink_kit import REPO, start_upstream, upstream_settlements

TOTAL = 500
KILLS = 20  # progress kills
PHASE_KILLS = 2  # per phase
PROGRESS_SPAN = 16  # settlements a progress-killed child may commit at most
PHASE_AT_MAX = 3  # a phase kill dies at its 1st..3rd hit
# Enough settlements for PHASE_AT_MAX hits of any phase: a drain comes every DRAIN_EVERY settlements.
PHASE_SPAN = PHASE_AT_MAX * DRAIN_EVERY + 1
WAIT = 60.0  # bounds a silent child; never asserted on


class Lines:
    """Reads the child's report lines, waiting (bounded) for each."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self._fd = proc.stdout.fileno()
        self._buffer = b""
        self._eof = False

    def next(self) -> str | None:
        """The next line, None at end of stream; fails when the child stays silent for WAIT seconds."""
        deadline = time.monotonic() + WAIT
        while b"\n" not in self._buffer and not self._eof:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "the child said nothing new within the wait"
            ready, _, _ = select.select([self._fd], [], [], remaining)
            if ready:
                chunk = os.read(self._fd, 4096)
                self._buffer += chunk
                self._eof = not chunk
        if b"\n" not in self._buffer:
            return None
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def rest(self) -> list[str]:
        """Every line until the stream ends."""
        lines = []
        while (line := self.next()) is not None:
            lines.append(line)
        return lines


def _spawn(data_dir: Path, hold_at: int, url: str, phase: str = "", at: int = 0) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in (PHASE_ENV, AT_ENV)}
    if phase:
        env.update({PHASE_ENV: phase, AT_ENV: str(at)})
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.crash_child", str(data_dir), str(TOTAL), str(hold_at), url],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        bufsize=0,
    )


def _finish(proc: subprocess.Popen[bytes]) -> int:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.close()
    code = proc.wait(timeout=WAIT)
    proc.stdout.close()
    return code


def _settled(data_dir: Path) -> int:
    db = open_db(data_dir)
    try:
        return int(next(iter(db.query("SELECT COUNT(*) AS n FROM settlements")))["n"])
    finally:
        db.close()


def _outbox_state(data_dir: Path, msgid: str) -> str | None:
    db = open_db(data_dir)
    try:
        rows = list(db.query("SELECT state FROM outbox WHERE msgid = ?", [msgid]))
        return str(rows[0]["state"]) if rows else None
    finally:
        db.close()


def _is_settled(data_dir: Path, chrg_bchno: str) -> bool:
    db = open_db(data_dir)
    try:
        return bool(list(db.query("SELECT 1 FROM settlements WHERE chrg_bchno = ?", [chrg_bchno])))
    finally:
        db.close()


def _start(
    data_dir: Path, hold_at: int, url: str, phase: str = "", at: int = 0
) -> tuple[subprocess.Popen[bytes], Lines]:
    done = _settled(data_dir)
    proc = _spawn(data_dir, hold_at, url, phase, at)
    lines = Lines(proc)
    assert lines.next() == f"ready {done}"
    return proc, lines


def _kill_by_progress(data_dir: Path, url: str, extra: int) -> None:
    """Let `extra` more settlements commit, SIGKILL the child, check nothing beyond its share landed."""
    done = _settled(data_dir)
    hold_at = done + PROGRESS_SPAN
    proc, lines = _start(data_dir, hold_at, url)
    while (line := lines.next()) is not None and not line.startswith(f"settled {done + extra} "):
        pass
    assert line is not None, "the child ended before the kill point"
    os.kill(proc.pid, signal.SIGKILL)
    assert _finish(proc) == -signal.SIGKILL
    assert done + extra <= _settled(data_dir) <= hold_at


def _kill_at_phase(data_dir: Path, url: str, phase: str, at: int) -> None:
    """Run a child that kills itself at the `at`-th hit of `phase`; check that it did and what it left."""
    done = _settled(data_dir)
    proc, lines = _start(data_dir, done + PHASE_SPAN, url, phase, at)
    reported: list[str] = []
    while (line := lines.next()) is not None and line != "holding":
        reported.append(line)
    if line == "holding":  # the child used up its share without hitting the phase
        os.kill(proc.pid, signal.SIGKILL)
    assert _finish(proc) == -signal.SIGKILL
    assert reported and reported[-1].startswith(f"phase {phase} "), f"{phase} was not hit: {reported[-3:]}"
    detail = reported[-1].split()[2]
    committed = [line for line in reported if line.startswith("settled ")]
    settled_now = _settled(data_dir)
    assert settled_now == done + len(committed)  # what the child reported is exactly what is stored
    if phase == IN_LEDGER_TXN:
        assert not _is_settled(data_dir, detail)  # the open transaction was rolled back whole
    elif phase == AFTER_COMMIT:
        assert committed[-1].split()[2] == detail
        assert _outbox_state(data_dir, detail) == "pending"
    else:
        assert detail in {h["msgid"] for h in upstream_settlements(url)}
        assert _outbox_state(data_dir, detail) == "pending"  # the upstream has it, the terminal not yet


def _crash_runs(data_dir: Path, server: ServerThread, rng: random.Random) -> int:
    runs = ["progress"] * KILLS + [phase for phase in PHASES for _ in range(PHASE_KILLS)]
    rng.shuffle(runs)
    for run in runs:
        if run == "progress":
            _kill_by_progress(data_dir, server.url, rng.randint(1, PROGRESS_SPAN))
        else:
            _kill_at_phase(data_dir, server.url, run, rng.randint(1, PHASE_AT_MAX))
    return len(runs)


def test_kill_9_at_progress_and_phase_points_then_restart_and_sync_delivers_each_settlement_once(
    tmp_path: Path,
) -> None:
    up, server = start_upstream(tmp_path / "upstream")
    data_dir = tmp_path / "terminal"
    try:
        kills = _crash_runs(data_dir, server, random.Random(20251126))
        progress = _settled(data_dir)
        final, lines = _start(data_dir, TOTAL, server.url)
        reported = lines.rest()
        assert _finish(final) == 0
        assert reported[-1].startswith(f"settled {TOTAL} ")
        held = upstream_settlements(server.url)
    finally:
        server.stop()
        up.close()
    assert kills == KILLS + PHASE_KILLS * len(PHASES)
    assert 0 < progress < TOTAL  # holds by construction: every run stops short of its share

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


def test_phase_hooks_fire_only_at_the_chosen_hit() -> None:
    report = io.StringIO()
    hooks = PhaseHooks(AFTER_UPSTREAM_COMMIT, 3, report)
    hooks.hit(AFTER_COMMIT, "x")  # another phase: not counted
    hooks.hit(AFTER_UPSTREAM_COMMIT, "a")
    hooks.hit(AFTER_UPSTREAM_COMMIT, "b")
    assert (hooks.hits, report.getvalue()) == (2, "")
