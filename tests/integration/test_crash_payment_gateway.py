"""kill -9 at each phase of the payment saga against the real reference gateway (devkit/payment).

Like tests/integration/test_crash_payment.py, but the child's saga talks HTTP to a gateway subprocess
(a fresh one, with a fresh database, per test: order numbers derive from msgids, which every test's
ledger starts afresh), the decline and the patient's phone go through the gateway's control endpoints,
and after the restart the gateway's own record (`/control/orders`) is checked beside the ledger: never
money without a settlement, never a settlement without the money. Each test asserts its phase was hit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from terminal.store.audit_check import verify_all
from tests.integration.payment_crash_hooks import PHASE_ENV
from tests.integration.payment_kit import MERCHANT, PaymentKit
from tests.integration.saga_kit import rig
from tests.integration.uplink_kit import REPO

CHILD = "tests.integration.payment_crash_child"
HELD = ("SUCCESS", "REFUND")  # gateway states in which an order may hold the patient's money
CASES = [
    # (scenario, phase, how recovery must end it, the gateway's order after recovery: None = never made)
    ("code", "committed:due:amount", "reversed", None),
    ("code", "committed:charging:order_sent", "reversed", "CLOSED"),  # closed for good before any charge
    ("code", "gateway:micropay", "paid", "SUCCESS"),
    ("code", "committed:paid:paid", "paid", "SUCCESS"),
    ("decline", "gateway:micropay", "reversed", "CLOSED"),
    ("decline", "committed:abandoning:abandon", "reversed", "CLOSED"),
    ("decline", "gateway:cancel", "reversed", "CLOSED"),
    ("decline", "in_reversal_txn", "reversed", "CLOSED"),
    ("walkaway", "gateway:create_qr", "reversed", "CLOSED"),  # the order made, no QR recorded
    ("walkaway", "committed:charging:qr_shown", "reversed", "CLOSED"),  # shown, nobody paid it
    ("walkaway", "committed:abandoning:abandon", "reversed", "REVOKED"),  # paid, then 撤销 at recovery
    ("walkaway", "gateway:cancel", "reversed", "REVOKED"),
    ("walkaway", "in_reversal_txn", "reversed", "REVOKED"),
]


def run_child(data_dir: Path, kit: PaymentKit, scenario: str, phase: str) -> list[str]:
    env = {**os.environ, PHASE_ENV: phase, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", CHILD, str(data_dir), str(kit.key_file.parent), scenario,
               "--url", kit.url, "--merchant", MERCHANT]  # fmt: skip
    proc = subprocess.run(command, env=env, cwd=REPO, capture_output=True, timeout=120, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    return proc.stdout.decode().splitlines()


@pytest.mark.parametrize(("scenario", "phase", "end", "order_state"), CASES)
def test_kill_at_phase_then_recover_against_the_gateway(
    tmp_path: Path, kit: PaymentKit, scenario: str, phase: str, end: str, order_state: str | None
) -> None:
    data_dir = tmp_path / "terminal"
    lines = run_child(data_dir, kit, scenario, phase)
    assert any(line.startswith(f"phase {phase} ") for line in lines), lines
    kit.reset()  # the decline switch was the dead terminal's scenario, not the restarted one's

    adapter = kit.adapter()
    r = rig(data_dir, port=adapter)  # the restarted terminal; the gateway kept running all along
    try:
        (msgid,) = [str(row["msgid"]) for row in r.side.db.query("SELECT msgid FROM payments")]
        r.saga.recover()
        payment = r.store.get(msgid)
        assert payment is not None and payment.state == end
        assert r.store.unfinished() == []
        orders = kit.orders()
        order = orders.get(payment.out_trade_no)
        assert (order or {}).get("state") == order_state, orders
        assert set(orders) <= {payment.out_trade_no}  # no order under any other number
        kept = sum(o["total_fen"] - o["refunded_fen"] for o in orders.values() if o["state"] in HELD)
        live = r.side.ledger.is_settled(payment.chrg_bchno)
        if end == "paid":
            assert order is not None and payment.fen and kept == order["total_fen"] == payment.fen and live
            assert order["transaction_id"] == payment.transaction_id
        else:
            assert kept == 0 and not live
            if order_state == "REVOKED":  # the patient's money went back in full
                assert order is not None and order["refunded_fen"] == order["total_fen"] == payment.fen
            assert r.totals() == {}  # the year-to-date totals are back where they were
            assert [row["state"] for row in r.outbox()] == ["voided"]
        assert verify_all(r.side.db) == []
    finally:
        adapter.close()
        r.side.db.close()
