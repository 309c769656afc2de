"""The reference payment gateway as a subprocess for tests: started on port 0, its ready line awaited.

Holds no tests itself. `running_gateway()` runs `python -m devkit payment` (never an in-process import:
the way `make demo` will start it), waits (bounded) for "payment gateway ready URL", and yields a
PaymentKit: the URL, the key file, a control client for the fault switches and the simulated phone, and
a factory for the terminal's adapter pointed at it. `attached_gateway()` gives the same kit to another
process (the payment crash test's child) for a gateway the parent runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from terminal.cli.pay_gateway import ready_url, stop_gateway
from terminal.clock import SystemClock
from terminal.payment.http import HttpPaymentGateway
from terminal.payment.signing import read_merchant_key
from terminal.ports import Clock

# A WeChat Pay payment code (18 digits, 10-15 prefix): what the counter's scanner reads off a phone.
WECHAT_CODE = "134567890123456789"

REPO = Path(__file__).resolve().parents[2]
MERCHANT = "MEDPAY-TEST"
START_WAIT_S = 30.0
DB_NAME, KEY_NAME = "gateway.sqlite", "merchant.key"  # in the folder the gateway runs from


@dataclass
class PaymentKit:
    """A running reference gateway: its URL, key and control endpoints."""

    url: str
    key_file: Path
    db: Path
    control: httpx.Client

    def adapter(
        self,
        clock: Clock | None = None,
        timeout_s: float = 10.0,
        merchant_id: str = MERCHANT,
        key: bytes | None = None,
    ) -> HttpPaymentGateway:
        """The terminal's adapter for this gateway (the real clock: signatures are checked on it)."""
        key = read_merchant_key(self.key_file) if key is None else key
        return HttpPaymentGateway(self.url, merchant_id, key, clock or SystemClock(), timeout_s=timeout_s)

    def faults(self, **patch: Any) -> dict[str, Any]:
        """Set some fault switches; the switches now."""
        reply = self.control.post("/control/faults", json=patch)
        reply.raise_for_status()
        return dict(reply.json())

    def reset(self) -> None:
        """Every fault switch off (held calls are released first)."""
        self.release()
        self.faults(decline=None, slow_s=0, lost=0, userpaying=0, userpaying_result="SUCCESS",
                    refund_fail=0, down=False, bad_signature=False)  # fmt: skip

    def pay_qr(self, code_url: str, channel: str = "wechat") -> httpx.Response:
        """The patient's phone scans the QR and pays."""
        return self.control.post("/control/pay-qr", json={"code_url": code_url, "channel": channel})

    def expire(self, out_trade_no: str) -> None:
        """Run a QR order's time out."""
        self.control.post("/control/expire", json={"out_trade_no": out_trade_no}).raise_for_status()

    def wait_held(self, count: int = 1) -> None:
        """Wait (bounded) until `count` signed calls are held by the `hold` switch."""
        reply = self.control.post("/control/wait-held", json={"count": count, "timeout_s": 20})
        assert reply.status_code == 200, reply.text

    def release(self) -> int:
        """Release held calls and wait until they are answered; how many were held."""
        return int(self.control.post("/control/release").json()["released"])

    def orders(self) -> dict[str, dict[str, Any]]:
        """The gateway's own record of every order, by out_trade_no."""
        return {o["out_trade_no"]: o for o in self.control.get("/control/orders").json()}


@contextmanager
def running_gateway(folder: Path, *flags: str) -> Iterator[PaymentKit]:
    """`python -m devkit payment` on 127.0.0.1 port 0 in `folder`, stopped (SIGTERM) after the block."""
    db, key_file = folder / DB_NAME, folder / KEY_NAME
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "devkit", "payment", "--db", str(db), "--key-file", str(key_file),
               "--merchant-id", MERCHANT, *flags]  # fmt: skip
    proc = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        with attached_gateway(ready_url(proc, wait_s=START_WAIT_S), folder) as kit:
            yield kit
    finally:
        stop_gateway(proc)


@contextmanager
def attached_gateway(url: str, folder: Path) -> Iterator[PaymentKit]:
    """A PaymentKit for a gateway already running at `url` from `folder` (another process started it)."""
    with httpx.Client(base_url=url, timeout=60.0) as control:
        yield PaymentKit(url, folder / KEY_NAME, folder / DB_NAME, control)
