"""A second uvicorn listener in a background thread (the metrics listener), beside `medpay serve`'s own."""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

from terminal.errors import ConfigError

log = logging.getLogger(__name__)


class BackgroundListener:
    """Serves `app` on (host, port) from a daemon thread; the socket is bound before start() returns."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError as exc:
            self._sock.close()
            raise ConfigError(f"the metrics listener cannot bind {host}:{port}: {exc}") from exc
        self.host, self.port = host, int(self._sock.getsockname()[1])
        # A thread that is not the main one: uvicorn leaves the process's signal handlers to the main server.
        self._server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=1)
        )
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="metrics-listener", daemon=True
        )

    def start(self, wait_s: float = 30.0) -> BackgroundListener:
        """Start serving; returns once it accepts connections (bounded)."""
        self._thread.start()
        deadline = time.monotonic() + wait_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ConfigError(f"the metrics listener on {self.host}:{self.port} did not start")
            time.sleep(0.01)
        log.info("metrics listener on %s:%d (/metrics, /health/live)", self.host, self.port)
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._sock.close()
