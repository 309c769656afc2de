"""The reference payment gateway for `medpay demo` and `medpay serve --demo`: a subprocess, never an import.

`python -m devkit payment` (devkit/payment/, docs/payment.md §9) is started on 127.0.0.1 port 0 with its
own SQLite file and merchant key in the demo's folder; its one ready line gives the URL, and `[payment]`
is pointed at it. The patient's phone is simulated through the gateway's control endpoint
(`POST /control/pay-qr`), which only the reference gateway has.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from terminal.config import PaymentSection, TerminalConfig
from terminal.errors import ConfigError

log = logging.getLogger(__name__)

READY = "payment gateway ready "
DEMO_MERCHANT = "MEDPAY-DEMO"
START_WAIT_S = 60.0
# The folder holding the `devkit` package: the repository the demo runs from.
SOURCE_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ReferenceGateway:
    """A running reference gateway: where it is, its key and its own database."""

    url: str
    key_file: Path
    db: Path
    merchant_id: str

    def payment_section(self, base: PaymentSection) -> PaymentSection:
        """`[payment]` pointed at this gateway, the other settings kept."""
        return base.model_copy(
            update={"url": self.url, "merchant_id": self.merchant_id, "key_file": self.key_file}
        )

    def configure(self, config: TerminalConfig) -> TerminalConfig:
        """The config with `[payment]` pointed at this gateway."""
        return config.model_copy(update={"payment": self.payment_section(config.payment)})

    def pay_qr(self, code_url: str, channel: str = "wechat") -> dict[str, Any]:
        """The demo patient's phone scans the QR and pays (the reference gateway's control endpoint)."""
        reply = httpx.post(
            f"{self.url}/control/pay-qr", json={"code_url": code_url, "channel": channel}, timeout=10
        )
        reply.raise_for_status()
        return dict(reply.json())

    def orders(self) -> list[dict[str, Any]]:
        """The gateway's own record of every order."""
        reply = httpx.get(f"{self.url}/control/orders", timeout=10)
        reply.raise_for_status()
        return list(reply.json())


@contextmanager
def reference_gateway(folder: Path, merchant_id: str = DEMO_MERCHANT) -> Iterator[ReferenceGateway]:
    """Start `python -m devkit payment` in `folder`, wait for its ready line; SIGTERM it after the block."""
    if not (SOURCE_ROOT / "devkit" / "payment").is_dir():
        raise ConfigError(f"the reference payment gateway (devkit/payment) is not in {SOURCE_ROOT}")
    folder.mkdir(parents=True, exist_ok=True)
    db, key_file = folder / "gateway.sqlite", folder / "merchant.key"
    path = os.pathsep.join(p for p in (str(SOURCE_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    command = [
        sys.executable, "-m", "devkit", "payment", "--db", str(db), "--key-file", str(key_file),
        "--merchant-id", merchant_id, "--port", "0",
    ]  # fmt: skip
    log_file = (folder / "gateway.log").open("ab")
    proc = subprocess.Popen(
        command, cwd=SOURCE_ROOT, env={**os.environ, "PYTHONPATH": path},
        stdout=subprocess.PIPE, stderr=log_file, text=True,
    )  # fmt: skip
    try:
        url = ready_url(proc, folder / "gateway.log")
        log.info("reference payment gateway at %s (its log: %s)", url, folder / "gateway.log")
        yield ReferenceGateway(url, key_file, db, merchant_id)
    finally:
        stop_gateway(proc)
        log_file.close()


def stop_gateway(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the gateway, kill it if it has not stopped within 15 s, close its ready-line pipe."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def ready_url(proc: subprocess.Popen[str], log_path: Path | None = None, wait_s: float = START_WAIT_S) -> str:
    """The URL from the gateway's ready line (bounded wait); ConfigError when it exits or stays silent."""
    assert proc.stdout is not None
    see = f"; see {log_path}" if log_path is not None else ""
    deadline = time.monotonic() + wait_s
    while (remaining := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([proc.stdout], [], [], remaining)
        if not readable:
            break
        line = proc.stdout.readline()
        if not line:
            raise ConfigError(f"the reference payment gateway exited ({proc.wait()}){see}")
        if line.startswith(READY):
            return line[len(READY) :].strip()
    raise ConfigError(f"the reference payment gateway was not ready within {wait_s:g} s{see}")
