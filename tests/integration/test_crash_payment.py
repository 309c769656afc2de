"""kill -9 at each phase of the payment saga; after restart, recovery ends it paid or reversed, and the
ledger and the gateway agree: never money without a settlement, never a settlement without the money.

The child (tests/integration/payment_crash_child.py) dies by its own phase hook
(tests/integration/payment_crash_hooks.py), never by wall time; each test asserts its phase was hit.
The fake gateway keeps its state in a JSON file, so its side survives the kill.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from terminal.store.audit_check import verify_all
from tests.integration.payment_crash_hooks import PHASE_ENV
from tests.integration.saga_kit import rig
from tests.integration.uplink_kit import REPO

CHILD = "tests.integration.payment_crash_child"
CASES = [
    # (scenario, phase, how recovery must end it)
    ("code", "settled", "reversed"),
    ("code", "committed:due:amount", "reversed"),
    ("code", "committed:charging:order_sent", "reversed"),
    ("code", "gateway:micropay", "paid"),
    ("decline", "committed:abandoning:abandon", "reversed"),
    ("decline", "gateway:cancel", "reversed"),
    ("decline", "in_reversal_txn", "reversed"),
    ("walkaway", "committed:charging:qr_shown", "reversed"),  # the QR was shown, nobody paid it
    ("walkaway", "gateway:cancel", "reversed"),
]


def run_child(data_dir: Path, gateway_file: Path, scenario: str, phase: str) -> list[str]:
    env = {**os.environ, PHASE_ENV: phase, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", CHILD, str(data_dir), str(gateway_file), scenario],
        env=env, cwd=REPO, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    return proc.stdout.decode().splitlines()


@pytest.mark.parametrize(("scenario", "phase", "end"), CASES)
def test_kill_at_phase_then_recover(tmp_path: Path, scenario: str, phase: str, end: str) -> None:
    data_dir, gateway_file = tmp_path / "data", tmp_path / "gateway.json"
    lines = run_child(data_dir, gateway_file, scenario, phase)
    assert any(line.startswith(f"phase {phase} ") for line in lines), lines

    r = rig(data_dir, gateway_file)  # the restarted terminal, the gateway's state as it was left
    (msgid,) = [str(row["msgid"]) for row in r.side.db.query("SELECT msgid FROM payments")]
    r.saga.recover()
    payment = r.store.get(msgid)
    assert payment is not None and payment.state == end
    assert r.store.unfinished() == []
    orders = json.loads(gateway_file.read_text())["orders"] if gateway_file.exists() else {}
    kept = sum(o["fen"] for o in orders.values() if o["state"] == "SUCCESS")
    live = r.side.ledger.is_settled(payment.chrg_bchno)
    if end == "paid":
        assert kept == payment.fen and live
    else:
        assert kept == 0 and not live
        assert r.totals() == {}  # the year-to-date totals are back where they were
        assert [row["state"] for row in r.outbox()] == ["voided"]
    assert verify_all(r.side.db) == []
