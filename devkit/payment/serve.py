"""Running the reference gateway: bind 127.0.0.1 first, then print one ready line with the URL, serve."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import sys
import threading
from pathlib import Path

from devkit.payment.app import Gateway, create_app
from devkit.payment.faults import Faults
from devkit.payment.store import GatewayStore
from devkit.serving import ServerThread
from terminal.payment.signing import read_merchant_key

log = logging.getLogger("dev_payment")

READY = "payment gateway ready"


def ensure_key(path: Path) -> bytes:
    """The merchant key in `path`, created (mode 0600, 64 hex characters) when the file does not exist."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32) + "\n")
        log.info("created merchant key %s", path)
    return read_merchant_key(path)


def serve(db: Path, key_file: Path, merchant_id: str, port: int, faults: Faults) -> None:
    """Serve until SIGTERM or SIGINT; the ready line goes to stdout once connections are accepted."""
    gateway = Gateway(GatewayStore(db), ensure_key(key_file), merchant_id, faults)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = ServerThread(create_app(gateway), port=port)
    try:
        server.start()
        sys.stdout.write(f"{READY} {server.url}\n")
        sys.stdout.flush()
        log.info("reference payment gateway on %s (db %s, merchant %s)", server.url, db, merchant_id)
        while not stop.wait(1.0):  # a bounded wait keeps the signal handler prompt
            pass
    finally:
        server.stop()
        gateway.store.close()
