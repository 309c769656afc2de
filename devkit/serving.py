"""Serving an app on loopback for tests, benches and demos: the port is bound before anyone is told it.

Picking a free port, closing it and handing the number to a server lets another process take the port
in between; here the socket is bound first, its port read back, and the same socket given to uvicorn.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

import uvicorn
from fastapi import FastAPI

HOST = "127.0.0.1"


class ServerThread:
    """uvicorn serving an app on a socket bound to 127.0.0.1 before start, in a background thread."""

    def __init__(self, app: FastAPI, port: int = 0, graceful_s: int = 1) -> None:
        # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets that say so,
        # and without it every reply waits ~40 ms on the client's delayed ACK.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        # A fixed port is rebound right after a stop (outage tests): old connections may be in TIME_WAIT.
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((HOST, port))
        except OSError:
            self._sock.close()
            raise
        self.port = int(self._sock.getsockname()[1])
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=graceful_s)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name=f"serve-{self.port}",
            daemon=True,
        )

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://{HOST}:{self.port}"

    def start(self, wait_s: float = 30.0) -> ServerThread:
        """Start serving and wait (bounded) until it accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + wait_s
        while not self._server.started:
            if not self._thread.is_alive():
                self._sock.close()
                raise RuntimeError(f"the server on {self.url} stopped while starting")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server on {self.url} did not start within {wait_s:g} s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@contextmanager
def serving(app: FastAPI, graceful_s: int = 2) -> Iterator[str]:
    """Serve the app on loopback while the block runs; yield its base URL."""
    with ServerThread(app, graceful_s=graceful_s) as server:
        yield server.url


@contextmanager
def refusing_port() -> Iterator[int]:
    """A loopback port where connections are refused while the block runs.

    The socket stays bound but never listens: a connection attempt is refused at once, and no other
    process can bind the port meanwhile (no SO_REUSEADDR), so nothing starts answering there by chance.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        yield int(sock.getsockname()[1])
