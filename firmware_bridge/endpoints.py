"""Where a simulator meets the terminal: a TCP listener (`socket://`) or a pty (a tty path), with unplug."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import threading
import tty
from abc import ABC, abstractmethod
from collections.abc import Callable

log = logging.getLogger(__name__)

_SETTLE = 0.2
_POLL = 0.05  # how often service loops look at their stop flag; short so tests and Ctrl-C are prompt


# ---------------------------------------------------------------------------------------- endpoints


class Endpoint(ABC):
    """The simulator's end of the wire: delivers what the host sends and sends what the device says."""

    def __init__(self) -> None:
        self.on_receive: Callable[[bytes], None] = lambda _data: None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    @abstractmethod
    def url(self) -> str:
        """The pyserial URL the host opens to reach this simulator."""

    @abstractmethod
    def send(self, data: bytes) -> None:
        """Send to the host; bytes are dropped (and logged) when no host is connected."""

    @abstractmethod
    def unplug(self, downtime: float) -> None:
        """Act out a pulled cable: drop the host, stay unreachable for downtime seconds, come back."""

    @abstractmethod
    def wait_client(self, timeout: float) -> bool:
        """Wait until a host is attached."""

    @abstractmethod
    def _serve(self) -> None: ...

    def start(self) -> None:
        """Start serving in a background thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name=f"sim:{self.url}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None


class TcpEndpoint(Endpoint):
    """A TCP server for one host at a time, reached with ``socket://HOST:PORT``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__()
        self.host = host
        self._lock = threading.Lock()
        self._client: socket.socket | None = None
        self._has_client = threading.Event()
        self._listener: socket.socket | None = self._listen(port)
        self.port = self._listener.getsockname()[1]

    @property
    def url(self) -> str:
        """``socket://host:port``."""
        return f"socket://{self.host}:{self.port}"

    def _listen(self, port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Reuse: after an unplug the same port must be bindable again at once, despite TIME_WAIT.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, port))
        listener.listen(1)
        return listener

    def send(self, data: bytes) -> None:
        """Send to the connected host."""
        with self._lock:
            client = self._client
            if client is None:
                log.warning("simulator %s: no host connected, %d bytes dropped", self.url, len(data))
                return
            try:
                client.sendall(data)
            except OSError as exc:
                log.warning("simulator %s: send failed: %s", self.url, exc)

    def unplug(self, downtime: float) -> None:
        """Close the connection and the listening socket, wait, listen again on the same port."""
        log.info("simulator %s: unplugged for %.1fs", self.url, downtime)
        with self._lock:
            self._drop_client()
            if self._listener is not None:
                self._listener.close()
                self._listener = None
        self._stop.wait(downtime)
        with self._lock:
            self._listener = self._listen(self.port)
        log.info("simulator %s: plugged back in", self.url)

    def wait_client(self, timeout: float) -> bool:
        """Wait until a host is connected."""
        return self._has_client.wait(timeout)

    def _drop_client(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError):
                self._client.shutdown(socket.SHUT_RDWR)
            self._client.close()
            self._client = None
            self._has_client.clear()

    def _serve(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                listener, client = self._listener, self._client
            watch = [s for s in (listener, client) if s is not None]
            if not watch:
                self._stop.wait(_POLL)
                continue
            try:
                ready, _, _ = select.select(watch, [], [], _POLL)
            except (OSError, ValueError):
                continue  # a socket was closed by unplug() between the snapshot and the select
            for sock in ready:
                if sock is listener:
                    self._accept(sock)
                else:
                    self._receive(sock)
        with self._lock:
            self._drop_client()
            if self._listener is not None:
                self._listener.close()
                self._listener = None

    def _accept(self, listener: socket.socket) -> None:
        try:
            conn, peer = listener.accept()
        except OSError:
            return
        # pyserial's socket:// handler flushes whatever arrives while it finishes opening; bytes sent
        # in that moment would vanish, so let the host settle before it counts as attached.
        self._stop.wait(_SETTLE)
        with self._lock:
            # One host at a time, like a serial cable: a new host replaces the old one.
            self._drop_client()
            self._client = conn
            self._has_client.set()
        log.info("simulator %s: host connected from %s:%s", self.url, *peer[:2])

    def _receive(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(4096)
        except OSError:
            data = b""
        if not data:
            with self._lock:
                if self._client is sock:
                    self._drop_client()
            log.info("simulator %s: host disconnected", self.url)
            return
        self.on_receive(data)


class PtyEndpoint(Endpoint):
    """A pseudo-terminal pair: the host opens the slave device path like a USB-serial port."""

    def __init__(self) -> None:
        super().__init__()
        self._master, self._slave = os.openpty()
        # Raw mode before the host opens the port: bytes written earlier must not be cooked (CR→LF, echo).
        tty.setraw(self._slave)
        self._path = os.ttyname(self._slave)

    @property
    def url(self) -> str:
        """The slave device path, e.g. /dev/pts/3."""
        return self._path

    def send(self, data: bytes) -> None:
        """Write to the host side."""
        try:
            os.write(self._master, data)
        except OSError as exc:
            log.warning("simulator %s: write failed: %s", self.url, exc)

    def unplug(self, downtime: float) -> None:
        """A pty cannot be unplugged and come back under the same name; use TCP (or socat) for that."""
        raise NotImplementedError("unplug needs the TCP endpoint")

    def wait_client(self, timeout: float) -> bool:
        """Ptys buffer what is written before the host opens them, so there is nothing to wait for."""
        return True

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], _POLL)
            if not ready:
                continue
            try:
                data = os.read(self._master, 4096)
            except OSError:
                # EIO while no process has the slave open; we hold one, so this is transient.
                self._stop.wait(_POLL)
                continue
            if data:
                self.on_receive(data)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
